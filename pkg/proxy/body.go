package proxy

import (
	"errors"
	"io"
	"sync"
)

// ErrBodyTooLarge is the failure of a request whose body is larger than
// the application's maximum request body size. RoundTrip returns it
// before contacting the origin when the request's Content-Length
// announces it, and wrapped in a *ClientBodyError when a body of unknown
// length crosses the limit. The edge answers it 413 Content Too Large.
var ErrBodyTooLarge = errors.New("request body larger than the maximum request body size")

// requestBody wraps a client's request body: it counts the bytes read and
// fails with ErrBodyTooLarge past max, and it can read ahead into memory
// (fill) so that the origin is contacted only once the body arrived, or
// once its first bytes filled the buffer. It is pooled: no allocation per
// request once warm.
type requestBody struct {
	src io.ReadCloser
	// max is the largest body accepted, 0 for any.
	max int64
	// n counts the bytes read from src.
	n int64
	// chunks hold the bytes read ahead, in copyBufs buffers; buffered is
	// how many, off how many of them were read.
	chunks        []*[]byte
	buffered, off int
	// err is src's error (io.EOF included) met while reading ahead,
	// returned once the buffered bytes are read.
	err error
}

var requestBodies = sync.Pool{New: func() any { return new(requestBody) }}

func newRequestBody(src io.ReadCloser, max int64) *requestBody {
	b := requestBodies.Get().(*requestBody)
	b.src, b.max = src, max
	return b
}

// free returns the buffers and b to their pools.
func (b *requestBody) free() {
	for i, c := range b.chunks {
		copyBufs.Put(c)
		b.chunks[i] = nil
	}
	*b = requestBody{chunks: b.chunks[:0]}
	requestBodies.Put(b)
}

// readSrc reads from the client, enforcing the limit.
func (b *requestBody) readSrc(p []byte) (int, error) {
	if b.max > 0 && int64(len(p)) > b.max-b.n+1 {
		// Read at most one byte past the limit: enough to know.
		p = p[:b.max-b.n+1]
	}
	n, err := b.src.Read(p)
	b.n += int64(n)
	if b.max > 0 && b.n > b.max {
		return 0, ErrBodyTooLarge
	}
	return n, err
}

// fill reads ahead until size bytes are buffered or the body ended. An
// error other than the end of the body is returned (ErrBodyTooLarge
// included); the end of the body is kept for Read.
func (b *requestBody) fill(size int) error {
	for b.buffered < size && b.err == nil {
		i, at := b.buffered/copyBufSize, b.buffered%copyBufSize
		if i == len(b.chunks) {
			b.chunks = append(b.chunks, copyBufs.Get().(*[]byte))
		}
		buf := *b.chunks[i]
		n, err := b.readSrc(buf[at:min(copyBufSize, at+size-b.buffered)])
		b.buffered += n
		if err != nil {
			b.err = err
			if err != io.EOF {
				return err
			}
		}
	}
	return nil
}

// whole reports whether the entire body is buffered.
func (b *requestBody) whole() bool { return b.err == io.EOF }

// Read returns the buffered bytes first, then reads from the client.
func (b *requestBody) Read(p []byte) (int, error) {
	if b.off < b.buffered {
		c := *b.chunks[b.off/copyBufSize]
		at := b.off % copyBufSize
		n := copy(p, c[at:min(copyBufSize, at+b.buffered-b.off)])
		b.off += n
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.readSrc(p)
}

// Close closes the client's body.
func (b *requestBody) Close() error { return b.src.Close() }
