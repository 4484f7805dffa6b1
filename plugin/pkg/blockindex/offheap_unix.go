//go:build unix

package blockindex

import "syscall"

// offHeapMapped tells whether allocOffHeap maps memory outside the Go heap.
const offHeapMapped = true

// allocOffHeap maps size bytes of anonymous memory; mapped is false when
// it had to fall back to the Go heap.
func allocOffHeap(size int) (mem []byte, mapped bool) {
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, size), false
	}
	return mem, true
}

func freeOffHeap(mem []byte) {
	if err := syscall.Munmap(mem); err != nil {
		panic("blockindex: munmap: " + err.Error())
	}
}
