package regblock

import "sync"

// registry shares one value per key between plugin instances, and counts
// who holds it: on a Corefile reload the new instance acquires before the
// old one releases, so what did not change is kept, not opened again. The
// list sets and the audit log writers are shared this way.
type registry[T comparable] struct {
	sync.Mutex
	m map[string]*hold[T]
}

type hold[T comparable] struct {
	v    T
	refs int
}

func newRegistry[T comparable]() *registry[T] {
	return &registry[T]{m: map[string]*hold[T]{}}
}

// acquire returns the value under key, made by open when nobody holds one.
// Each call that succeeds must be paired with a release.
func (r *registry[T]) acquire(key string, open func() (T, error)) (T, error) {
	r.Lock()
	defer r.Unlock()
	return r.acquireLocked(key, open)
}

// acquireLocked is acquire with r locked.
func (r *registry[T]) acquireLocked(key string, open func() (T, error)) (T, error) {
	if h := r.m[key]; h != nil {
		h.refs++
		return h.v, nil
	}
	v, err := open()
	if err != nil {
		return v, err
	}
	r.m[key] = &hold[T]{v: v, refs: 1}
	return v, nil
}

// release gives up one hold of key; the last holder's closing runs, after
// the value left the registry and without its lock.
func (r *registry[T]) release(key string, closing func()) {
	r.Lock()
	h := r.m[key]
	h.refs--
	last := h.refs == 0
	if last {
		delete(r.m, key)
	}
	r.Unlock()
	if last {
		closing()
	}
}

// heldLocked reports whether v is held under key; r is locked.
func (r *registry[T]) heldLocked(key string, v T) bool {
	h := r.m[key]
	return h != nil && h.v == v
}
