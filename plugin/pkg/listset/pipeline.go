package listset

import (
	"unsafe"

	"github.com/regblock/regblock/plugin/pkg/blockindex"
	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// pipeline runs an indexer on a goroutine of its own, fed entries in
// batches: the loading goroutine reads and parses a list file while this
// one indexes the entries parsed before, and each takes about half of a
// load. A stream's entries hold strings of the parser's buffer, valid
// only during the call that hands them over, so a batch copies them into
// a buffer of its own, reused once the indexer is done with the batch
// (the indexer clones what it keeps, as it does from a stream).
//
// Whichever of the two is faster waits for the other at each batch (256
// entries, under a hundred microseconds), and the runtime then looks for
// queries that arrived meanwhile: a batch is small so that the load
// never holds both cores for long.
type pipeline struct {
	ix     indexer
	cur    *entryBatch      // being filled
	full   chan *entryBatch // for the indexer, in order
	free   chan *entryBatch // done with
	done   chan struct{}    // closed when the indexer has taken every batch
	closed bool             // by close, called on the loading goroutine only
}

// entryBatch is a batch of entries and the text their strings point into.
type entryBatch struct {
	entries []blocklist.Entry
	// text holds the entries' strings. Grown, it leaves the strings made
	// before in the array they point into, which stays theirs; emptied
	// for reuse, it is written over only once the indexer is done.
	text []byte
}

const (
	batchEntries = 256
	batches      = 4
)

func newPipeline(ix indexer) *pipeline {
	p := &pipeline{ix: ix, full: make(chan *entryBatch, batches), free: make(chan *entryBatch, batches), done: make(chan struct{})}
	for range batches {
		p.free <- &entryBatch{entries: make([]blocklist.Entry, 0, batchEntries), text: make([]byte, 0, 16<<10)}
	}
	p.cur = <-p.free
	go func() {
		defer close(p.done)
		for b := range p.full {
			for i := range b.entries {
				ix.Add(b.entries[i])
			}
			clear(b.entries) // no string of the text outlives its batch
			b.entries, b.text = b.entries[:0], b.text[:0]
			p.free <- b
		}
	}()
	return p
}

// Add takes the list's next entry, as an indexer does.
func (p *pipeline) Add(e blocklist.Entry) {
	if len(p.cur.entries) == batchEntries {
		p.full <- p.cur
		p.cur = <-p.free
	}
	e.Name, e.Order, e.Category = p.cur.keep(e.Name), p.cur.keep(e.Order), p.cur.keep(e.Category)
	p.cur.entries = append(p.cur.entries, e)
}

// keep copies s into the batch's text and returns the copy.
func (b *entryBatch) keep(s string) string {
	if s == "" {
		return ""
	}
	start := len(b.text)
	b.text = append(b.text, s...)
	return unsafe.String(&b.text[start], len(s))
}

// Finish hands the indexer the last batch, waits for it to index every
// entry, and returns what the indexer's Finish returns.
func (p *pipeline) Finish(l *blocklist.List) (*blockindex.ListIndex, error) {
	p.close()
	return p.ix.Finish(l)
}

// close ends the indexer's goroutine once it has taken every entry added,
// and waits for it. The caller calls it (or Finish) when it stops adding,
// whether or not the list is good.
func (p *pipeline) close() {
	if p.closed {
		return
	}
	p.closed = true
	if len(p.cur.entries) > 0 {
		p.full <- p.cur
	}
	close(p.full)
	<-p.done
}
