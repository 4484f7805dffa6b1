package blockindex

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

// An index's records and table hold no pointers and live as long as the
// lists in force: tens or hundreds of megabytes that the garbage collector
// would never free early, yet count in the heap it paces itself on. With
// GOGC=100 a resolver's heap then grows to twice the index before a
// collection, so under load a 10 M-entry resolver was resident at about
// twice its steady size. They are allocated outside the Go heap instead
// (mmap where the system has it), and handed back when the collector finds
// the block that owns them unreachable.

// block is memory outside the Go heap, unmapped by a cleanup once the block
// is unreachable. Whatever uses slices of its memory must keep the block
// reachable for as long.
type block struct {
	mem []byte
}

// newBlock returns a block of at least size bytes, zeroed.
func newBlock(size int) *block {
	mem, mapped := allocOffHeap(max(size, 1))
	b := &block{mem: mem}
	if mapped {
		mappedBlocks.Add(1)
		runtime.AddCleanup(b, func(mem []byte) {
			freeOffHeap(mem)
			mappedBlocks.Add(-1)
		}, mem)
	}
	return b
}

// mappedBlocks counts the blocks mapped and not yet unmapped.
var mappedBlocks atomic.Int64

// offHeap returns a slice of n values of T (which must hold no pointers)
// outside the Go heap, zeroed, and the block that owns its memory.
func offHeap[T any](n int) ([]T, *block) {
	var zero T
	b := newBlock(n * int(unsafe.Sizeof(zero)))
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b.mem))), n), b
}
