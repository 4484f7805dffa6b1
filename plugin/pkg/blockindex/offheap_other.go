//go:build !unix

package blockindex

func allocOffHeap(size int) ([]byte, bool) { return make([]byte, size), false }

func freeOffHeap([]byte) {}
