package httphead

import "bufio"

// WriteField writes the field line "name: value\r\n" to bw: in one Write
// of the buffer's own free space when the line fits there, as four
// writes otherwise. A head is a few dozen such lines; one call each
// instead of four is most of what writing it costs.
func WriteField(bw *bufio.Writer, name, value string) {
	if len(name)+len(value)+4 <= bw.Available() {
		b := bw.AvailableBuffer()
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		b = append(b, "\r\n"...)
		bw.Write(b)
		return
	}
	bw.WriteString(name)
	bw.WriteString(": ")
	bw.WriteString(value)
	bw.WriteString("\r\n")
}
