package h1

import (
	"bytes"

	"golang.org/x/net/http/httpguts"
)

// headerScan watches the raw bytes of a request's line and header fields
// as the connection delivers them, for what the parser (which follows
// http.ReadRequest) does not tell: whether a field was folded (it joins the lines), whether a Host
// field was sent with an absolute-form target and what it held (it drops
// the field), and whether Content-Length and Transfer-Encoding were both
// sent or Transfer-Encoding came with HTTP/1.0 (it drops those fields).
//
// It reads the same bytes as the parser, byte by byte, with no allocation;
// it stops at the empty line that ends the header fields. Lines end at LF,
// one CR before it dropped, as in net/textproto.
type headerScan struct {
	done bool // the empty line that ends the header fields was seen
	line int  // lines ended so far; 0 while in the request line
	col  int  // bytes of the current line so far
	cr   bool // the last byte was CR

	// The request line.
	spaces   int      // spaces seen
	proto    [10]byte // the bytes after the second space (the version)
	protoLen int      // how many; len(proto) means longer
	emptyRL  bool     // the request line was empty

	// The current header field.
	inName  bool
	name    [len("transfer-encoding") + 1]byte // lower case
	nameLen int                                // len(name) means longer
	field   int                                // fieldOther, fieldHost, ...
	started bool                               // a value byte other than SP/HTAB was seen
	space   bool                               // SP/HTAB after the value started
	value   [len("chunked") + 1]byte           // Transfer-Encoding value, lower case
	valLen  int

	// Results.
	obsFold   bool // a header line started with SP or HTAB
	hosts     int  // Host fields
	badHost   bool // a Host field value with a byte no host has
	lengths   int  // Content-Length fields
	encodings int  // Transfer-Encoding fields
	chunked   int  // Transfer-Encoding fields whose value is exactly "chunked"
}

const (
	fieldOther = iota
	fieldHost
	fieldLength
	fieldEncoding
)

// validHostByte is httpguts.ValidHostHeader, byte by byte.
var validHostByte = func() (t [256]bool) {
	for i := range t {
		t[i] = httpguts.ValidHostHeader(string([]byte{byte(i)}))
	}
	return t
}()

// feed scans p, the next bytes of the request. Bytes that cannot change
// the results (the target, values of other fields) are skipped with
// bytes.IndexByte.
func (s *headerScan) feed(p []byte) {
	for i := 0; i < len(p) && !s.done; i++ {
		if n := s.skippable(p[i:]); n > 0 {
			s.col += n
			s.cr = p[i+n-1] == '\r'
			if i += n; i == len(p) {
				return
			}
		}
		b := p[i]
		if b == '\n' {
			s.endLine()
			continue
		}
		if s.line > 0 && s.col == 0 && b != ' ' && b != '\t' {
			// A field name whole in p is classified at once.
			if n := s.wholeName(p[i:]); n > 0 {
				s.col += n
				s.cr = false
				i += n - 1
				continue
			}
		}
		if s.line == 0 {
			s.requestLineByte(b)
		} else {
			s.fieldByte(b)
		}
		s.col++
		s.cr = b == '\r'
	}
}

// skippable returns how many bytes at the start of p the scanner can skip:
// in the request line before its second space, those up to the next space
// or LF; in the value of a field it does not watch (or a folded line),
// those up to the next LF.
func (s *headerScan) skippable(p []byte) int {
	switch {
	case s.line == 0 && s.spaces < 2:
		end := bytes.IndexByte(p, '\n')
		if end < 0 {
			end = len(p)
		}
		if sp := bytes.IndexByte(p[:end], ' '); sp >= 0 {
			return sp
		}
		return end
	case s.line > 0 && s.col > 0 && !s.inName && s.field == fieldOther:
		if end := bytes.IndexByte(p, '\n'); end >= 0 {
			return end
		}
		return len(p)
	}
	return 0
}

func (s *headerScan) requestLineByte(b byte) {
	if b == ' ' {
		s.spaces++
		if s.spaces <= 2 {
			return
		}
	}
	if s.spaces >= 2 && s.protoLen < len(s.proto) {
		s.proto[s.protoLen] = b
		s.protoLen++
	}
}

func (s *headerScan) fieldByte(b byte) {
	if s.col == 0 {
		if b == ' ' || b == '\t' {
			s.obsFold = true
			s.inName, s.field = false, fieldOther
			return
		}
		s.inName, s.nameLen, s.field, s.started, s.space, s.valLen = true, 0, fieldOther, false, false, 0
	}
	if s.inName {
		if b == ':' {
			s.inName = false
			s.field = s.fieldKind()
			s.countField()
			return
		}
		if s.nameLen < len(s.name) {
			s.name[s.nameLen] = lower(b)
			s.nameLen++
		}
		return
	}
	if s.field == fieldOther {
		return
	}
	if b == ' ' || b == '\t' {
		if s.started {
			s.space = true
		}
		return
	}
	if s.cr {
		// A CR that is not the end of the line: the parser refuses it.
		s.space = true
	}
	if b == '\r' {
		// Perhaps the end of the line; the next byte tells.
		return
	}
	if s.space {
		// A byte after white space inside the value.
		s.badHost = s.badHost || s.field == fieldHost
		s.valLen = len(s.value)
	}
	s.started = true
	switch s.field {
	case fieldHost:
		if !validHostByte[b] {
			s.badHost = true
		}
	case fieldEncoding:
		if s.valLen < len(s.value) {
			s.value[s.valLen] = lower(b)
			s.valLen++
		}
	}
}

func (s *headerScan) endLine() {
	n := s.col
	if s.cr {
		n--
	}
	if s.line == 0 {
		if s.cr && s.spaces >= 2 && s.protoLen > 0 && s.protoLen < len(s.proto) {
			s.protoLen-- // the CR
		}
		s.emptyRL = n == 0
		if s.emptyRL {
			// The parser refuses the request here.
			s.done = true
		}
	} else {
		if n == 0 {
			s.done = true
		}
		if s.field == fieldEncoding && string(s.value[:s.valLen]) == "chunked" {
			s.chunked++
		}
	}
	s.line++
	s.col, s.cr = 0, false
}

// wholeName handles a field line's name and colon when both are in p, and
// returns how many bytes that was (0 if they are not).
func (s *headerScan) wholeName(p []byte) int {
	colon := bytes.IndexByte(p, ':')
	if colon < 0 {
		return 0
	}
	if lf := bytes.IndexByte(p[:colon], '\n'); lf >= 0 {
		return 0
	}
	s.inName, s.started, s.space, s.valLen = false, false, false, 0
	s.field = nameKind(p[:colon])
	s.countField()
	return colon + 1
}

func (s *headerScan) countField() {
	switch s.field {
	case fieldHost:
		s.hosts++
	case fieldLength:
		s.lengths++
	case fieldEncoding:
		s.encodings++
	}
}

func (s *headerScan) fieldKind() int {
	return nameKind(s.name[:s.nameLen])
}

// nameKind returns which watched field name is, in any case.
func nameKind(name []byte) int {
	var want string
	kind := fieldOther
	switch len(name) {
	case len("host"):
		want, kind = "host", fieldHost
	case len("content-length"):
		want, kind = "content-length", fieldLength
	case len("transfer-encoding"):
		want, kind = "transfer-encoding", fieldEncoding
	default:
		return fieldOther
	}
	for i, b := range name {
		if lower(b) != want[i] {
			return fieldOther
		}
	}
	return kind
}

// atLeast11 reports whether the request line's version is HTTP/1.1 or
// later, as net/http reads it.
func (s *headerScan) atLeast11() bool {
	p := s.proto[:s.protoLen]
	if len(p) != 8 || string(p[:5]) != "HTTP/" || p[6] != '.' || p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9' {
		return false
	}
	return p[5] > '1' || p[5] == '1' && p[7] >= '1'
}

// encodingSupported reports whether the Transfer-Encoding fields are the
// single "chunked" that net/http's parser accepts.
func (s *headerScan) encodingSupported() bool {
	return s.encodings == 1 && s.chunked == 1
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}
