package capture

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket/layers"
)

// Record locates one packet in the buffer ReadRecords filled.
type Record struct {
	Off, Len uint32 // the packet's data is buf[Off:Off+Len]
	WireLen  uint32 // its length on the wire
	LinkType layers.LinkType
	TS       int64 // packet time, Unix nanoseconds
}

// RecordReader is a Source that reads many packets at once, straight
// into the caller's buffer: no copy of each packet out of a read buffer.
type RecordReader interface {
	Source
	// ReadRecords reads the next part of the capture into buf (whole
	// records, pcap record headers included, up to 128 KiB read at a
	// time) and appends to recs where each packet lies in the returned
	// buffer. buf's capacity must be at least MinRecordBuf.
	// Records returned with an error are good and come before it: io.EOF
	// at a clean end, else an error as ReadPacket gives it (a file cut
	// in the middle of a record wraps ErrTruncated).
	ReadRecords(buf []byte, recs []Record) ([]byte, []Record, error)
}

// MinRecordBuf is the smallest buffer ReadRecords takes: two records of
// the largest size, so that every call makes progress.
const MinRecordBuf = 2 * (16 + maxRecord)

// minRecordBuf is MinRecordBuf; tests lower it to cut records across
// calls often. A record that cannot fit a buffer that small is then an
// error (errRecordTooBig), never reached with MinRecordBuf.
var minRecordBuf = MinRecordBuf

var errRecordTooBig = errors.New("record larger than the read buffer")

// readSize is the most ReadRecords reads at a time, whatever the buffer's
// capacity. The kernel's copy is then still in the cache when a worker
// reads the packets: on the bench mix, reads of 128 KiB took one worker
// 0.70 s against 0.87 s with 512 KiB (64 KiB: 0.79 s, 32 KiB: 0.95 s,
// more system calls).
const readSize = 128 << 10

// InPlace returns src as a RecordReader when it can read records in
// place (a classic pcap file), else nil: pcapng goes through pcapgo's
// reader, one packet at a time.
func InPlace(src Source) RecordReader {
	if f, ok := src.(*File); ok && f.br != nil {
		return f
	}
	return nil
}

// ReadRecords implements RecordReader for classic pcap. It must not be
// mixed with ReadPacket on the same file.
func (c *File) ReadRecords(buf []byte, recs []Record) ([]byte, []Record, error) {
	if c.buf == nil {
		return buf[:0], recs, fmt.Errorf("%s: %w", c.name, os.ErrClosed)
	}
	if c.br == nil {
		return buf[:0], recs, fmt.Errorf("%s: records are read in place from classic pcap only", c.name)
	}
	if cap(buf) < minRecordBuf {
		return buf[:0], recs, fmt.Errorf("%s: record buffer of %d bytes, want %d at least", c.name, cap(buf), minRecordBuf)
	}
	if c.recErr != nil {
		return buf[:0], recs, c.recErr
	}
	// What the last call left (an incomplete record), then what the
	// bufio reader holds from the open, then the file itself.
	buf = append(buf[:0], c.carry...)
	c.carry = c.carry[:0]
	fromBuffer := false
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(min(n, cap(buf)-len(buf)))
		buf = append(buf, b...)
		c.br.Discard(len(b))
		fromBuffer = true
	}
	// One read: a pipe or a slow source hands over what it has, and its
	// packets go on now rather than when the buffer is full.
	eof := false
	var readErr error
	for tries := 0; !fromBuffer && len(buf) < cap(buf); tries++ {
		n, err := c.src.Read(buf[len(buf):min(cap(buf), len(buf)+readSize)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			eof = true
		} else if err != nil {
			readErr = err
		} else if n == 0 && tries < 100 {
			continue
		} else if n == 0 {
			readErr = io.ErrNoProgress
		}
		break
	}
	off := 0
	for off+16 <= len(buf) {
		hdr := buf[off : off+16]
		sec, frac := c.order.Uint32(hdr[0:4]), c.order.Uint32(hdr[4:8])
		capLen, wireLen := c.order.Uint32(hdr[8:12]), c.order.Uint32(hdr[12:16])
		// As readRecord: the header is checked before its data is looked for.
		if capLen > maxRecord {
			c.recErr = fmt.Errorf("%s: after %d packets: capture length exceeds snap length: %d > %d", c.name, c.packets, capLen, maxRecord)
			break
		}
		if capLen > wireLen {
			c.recErr = fmt.Errorf("%s: after %d packets: capture length exceeds original packet length: %d > %d", c.name, c.packets, capLen, wireLen)
			break
		}
		if off+16+int(capLen) > len(buf) {
			break
		}
		if !c.nano {
			frac *= 1000
		}
		recs = append(recs, Record{Off: uint32(off + 16), Len: capLen, WireLen: wireLen, LinkType: c.lt, TS: int64(sec)*1e9 + int64(frac)})
		off += 16 + int(capLen)
		c.packets++
	}
	if c.recErr != nil {
		return buf, recs, c.recErr
	}
	tail := buf[off:]
	switch {
	case readErr != nil:
		c.recErr = fmt.Errorf("%s: after %d packets: %w", c.name, c.packets, readErr)
	case !eof && len(tail) == cap(buf):
		c.recErr = fmt.Errorf("%s: after %d packets: %w", c.name, c.packets, errRecordTooBig)
	case !eof:
		c.carry = append(c.carry, tail...)
	case len(tail) == 0:
		c.recErr = io.EOF
	default:
		// Even a record header and not a byte more: a cut capture, as
		// ReadPacket has it.
		c.recErr = fmt.Errorf("%s: %w after %d packets", c.name, ErrTruncated, c.packets)
	}
	if c.recErr != nil {
		return buf, recs, c.recErr
	}
	return buf, recs, nil
}
