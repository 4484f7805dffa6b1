//go:build !unix

package blockindex

// offHeapMapped tells whether allocOffHeap maps memory outside the Go heap.
const offHeapMapped = false

func allocOffHeap(size int) ([]byte, bool) { return make([]byte, size), false }

func freeOffHeap([]byte) {}
