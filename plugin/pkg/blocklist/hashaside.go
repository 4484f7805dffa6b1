package blocklist

import (
	"crypto/sha256"
	"hash"
	"io"

	"aead.dev/minisign"
)

// hashAside reads a list for the parser and hashes what it reads on another
// goroutine: SHA-256 (the list's identity) and minisign's BLAKE2b (its
// signature) cost a third as much as parsing, and a resolver has a second
// core. Each chunk is read once and copied for the hasher, so both see the
// same bytes whatever happens to the file meanwhile.
type hashAside struct {
	r    io.Reader
	work chan []byte // chunks read, for the hasher; closed at the end
	free chan []byte // buffers the hasher is done with
	done chan struct{}

	sha    hash.Hash
	signed *minisign.Reader // hashes what the hasher reads through it
}

const (
	hashChunk   = 64 << 10
	hashBuffers = 4
)

func newHashAside(r io.Reader) *hashAside {
	h := &hashAside{r: r, work: make(chan []byte, hashBuffers), free: make(chan []byte, hashBuffers), done: make(chan struct{}), sha: sha256.New()}
	for range hashBuffers {
		h.free <- make([]byte, 0, hashChunk)
	}
	h.signed = minisign.NewReader(&chunkReader{work: h.work, free: h.free})
	go func() {
		io.Copy(h.sha, h.signed) // reads until work is closed
		close(h.done)
	}()
	return h
}

// Read implements io.Reader for the parser.
func (h *hashAside) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	for rest := p[:n]; len(rest) > 0; {
		b := <-h.free
		k := min(len(rest), cap(b))
		h.work <- append(b[:0], rest[:k]...)
		rest = rest[k:]
	}
	return n, err
}

// finish waits for the hasher to hash all that was read; the caller has
// read to the end (or stopped reading) and must call it once.
func (h *hashAside) finish() {
	close(h.work)
	<-h.done
}

// chunkReader is the hasher's side: the chunks, in order.
type chunkReader struct {
	work <-chan []byte
	free chan<- []byte
	cur  []byte // unread part of the chunk being read
	buf  []byte // that chunk's buffer
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.cur) == 0 {
		if c.buf != nil {
			c.free <- c.buf
			c.buf = nil
		}
		b, ok := <-c.work
		if !ok {
			return 0, io.EOF
		}
		c.cur, c.buf = b, b
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}
