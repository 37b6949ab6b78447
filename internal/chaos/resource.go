package chaos

import "sync"

// Resource is a store protected by fencing tokens (ALGORITHM.md F5): per
// lock name it keeps the largest token it accepted and refuses any write
// with a smaller one. It also knows the largest token the lock has handed
// out so far (Issued), so it can tell a stale write it accepted: one whose
// token was already superseded by a newer acquisition when it arrived.
type Resource struct {
	mu    sync.Mutex
	names map[string]*fenced
}

type fenced struct {
	highest  uint64 // largest token accepted
	issued   uint64 // largest token handed out by the lock so far
	accepted int
	rejected int
	stale    int // accepted although a newer token had been issued
}

// NewResource returns an empty resource.
func NewResource() *Resource { return &Resource{names: map[string]*fenced{}} }

func (r *Resource) get(name string) *fenced {
	f := r.names[name]
	if f == nil {
		f = &fenced{}
		r.names[name] = f
	}
	return f
}

// Issued records that the lock handed out token for name; a holder calls it
// right after its Lock returned.
func (r *Resource) Issued(name string, token uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.get(name)
	f.issued = max(f.issued, token)
}

// Write is one access by a holder of name with token: refused when the
// token is smaller than the largest accepted (F5). It reports whether the
// write was accepted.
func (r *Resource) Write(name string, token uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.get(name)
	if token < f.highest {
		f.rejected++
		return false
	}
	if token < f.issued {
		f.stale++
	}
	f.highest = token
	f.accepted++
	return true
}

// Counts returns the writes accepted, refused as stale, and accepted
// although stale, over all names.
func (r *Resource) Counts() (accepted, rejected, staleAccepted int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.names {
		accepted += f.accepted
		rejected += f.rejected
		staleAccepted += f.stale
	}
	return
}
