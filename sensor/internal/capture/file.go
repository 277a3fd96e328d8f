// Package capture provides packet sources: pcap and pcapng files now, live
// interfaces later. Every source looks the same to the pipeline.
package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// ErrNotCapture is returned when a file is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a pcap or pcapng capture")

// ErrTruncated wraps the error of a capture that ends in the middle of a
// packet record: everything before the cut was delivered.
var ErrTruncated = errors.New("capture truncated")

// Source delivers packets. The data returned by ReadPacket is owned by the
// source and valid only until the next call.
type Source interface {
	// ReadPacket returns the next packet, its capture info and its link
	// type. io.EOF means a clean end.
	ReadPacket() ([]byte, gopacket.CaptureInfo, layers.LinkType, error)
	Name() string
	Close() error
}

// File is a pcap or pcapng file opened for reading.
type File struct {
	name    string
	f       *os.File
	pcap    *pcapgo.Reader
	ng      *pcapgo.NgReader
	packets uint64
	// Classic pcap records are read here, not through c.pcap (which
	// checked the file header): a record's data is handed out where it
	// lies in br's buffer, saving pcapgo's copy of every packet.
	br    *bufio.Reader
	buf   *bufio.Reader // br, or the pcapng reader's: back to readers at Close
	order binary.ByteOrder
	nano  bool
	lt    layers.LinkType
	// ReadRecords: what br was reading, an incomplete record carried to
	// the next call, and the error that ended the reading.
	src    io.Reader
	carry  []byte
	recErr error
}

// maxRecord is the largest record data taken (pcapgo's snap length cap,
// as set below).
const maxRecord = 256 << 10

// OpenFile opens a pcap or pcapng capture, recognised by its magic number,
// not by its name.
func OpenFile(name string) (*File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	c, err := openNamed(name, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	c.f = f
	return c, nil
}

// openNamed is openReader with errors naming the file, as OpenFile's.
func openNamed(name string, r io.Reader) (*File, error) {
	c, err := openReader(name, r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// readers keeps the 1 MiB read buffers of closed files for the next
// (a sensor reading a directory of captures, a fuzz target): allocating
// and clearing one per file cost more than reading a small capture.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1<<20) }}

// openReader reads a capture from r (OpenFile's file; tests' bytes).
func openReader(name string, r io.Reader) (c *File, err error) {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		if err != nil {
			br.Reset(nil)
			readers.Put(br)
		}
	}()
	magic, err := br.Peek(4)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: file is %d bytes long", ErrNotCapture, len(magic))
		}
		return nil, err
	}
	c = &File{name: name, buf: br, src: r}
	switch binary.BigEndian.Uint32(magic) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		c.pcap, err = pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotCapture, err)
		}
		// pcapgo caps packets at the file's snap length; some writers put 0
		// or a small number there while storing bigger packets.
		c.pcap.SetSnaplen(maxRecord)
		c.br, c.lt = br, c.pcap.LinkType()
		m := binary.BigEndian.Uint32(magic)
		c.order = binary.ByteOrder(binary.BigEndian)
		if m == 0xd4c3b2a1 || m == 0x4d3cb2a1 {
			c.order = binary.LittleEndian
		}
		c.nano = m == 0xa1b23c4d || m == 0x4d3cb2a1
	case 0x0a0d0d0a:
		c.ng, err = pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotCapture, err)
		}
	default:
		return nil, fmt.Errorf("%w: unknown magic number %#08x", ErrNotCapture, binary.BigEndian.Uint32(magic))
	}
	return c, nil
}

// Name returns the file name.
func (c *File) Name() string { return c.name }

// Close closes the file. The data of the last packet read is not valid
// after.
func (c *File) Close() error {
	if c.buf != nil {
		c.buf.Reset(nil)
		readers.Put(c.buf)
		c.buf, c.br, c.pcap, c.ng = nil, nil, nil, nil
	}
	if c.f == nil {
		return nil
	}
	return c.f.Close()
}

// ReadPacket returns the next packet. A file cut in the middle of a record
// gives an error wrapping ErrTruncated.
func (c *File) ReadPacket() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	var (
		data []byte
		ci   gopacket.CaptureInfo
		lt   layers.LinkType
		err  error
	)
	if c.buf == nil {
		return nil, ci, lt, fmt.Errorf("%s: %w", c.name, os.ErrClosed)
	}
	if c.br != nil {
		data, ci, err = c.readRecord()
		lt = c.lt
	} else {
		data, ci, err = c.ng.ZeroCopyReadPacketData()
		if err == nil && len(ci.AncillaryData) > 0 {
			lt, _ = ci.AncillaryData[0].(layers.LinkType)
		}
	}
	if err != nil {
		// A record header read in full (CaptureLength set) but no data
		// after it: pcapgo says io.EOF, as io.ReadFull does.
		if errors.Is(err, io.EOF) && ci.CaptureLength == 0 {
			return nil, ci, lt, io.EOF
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ci, lt, fmt.Errorf("%s: %w after %d packets", c.name, ErrTruncated, c.packets)
		}
		return nil, ci, lt, fmt.Errorf("%s: after %d packets: %w", c.name, c.packets, err)
	}
	c.packets++
	return data, ci, lt, nil
}

// readRecord reads one classic pcap record (16-byte header, then the
// data) and returns its data as it lies in the read buffer, valid until
// the next call. Errors are as pcapgo's: io.EOF at a clean end or when a
// header is followed by no data at all (CaptureLength then set),
// io.ErrUnexpectedEOF inside a header or the data.
func (c *File) readRecord() ([]byte, gopacket.CaptureInfo, error) {
	var ci gopacket.CaptureInfo
	hdr, err := c.br.Peek(16)
	if err != nil {
		if len(hdr) == 0 && errors.Is(err, io.EOF) {
			return nil, ci, io.EOF
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, ci, err
	}
	sec, frac := c.order.Uint32(hdr[0:4]), c.order.Uint32(hdr[4:8])
	ci.CaptureLength = int(c.order.Uint32(hdr[8:12]))
	ci.Length = int(c.order.Uint32(hdr[12:16]))
	if ci.CaptureLength > maxRecord {
		return nil, ci, fmt.Errorf("capture length exceeds snap length: %d > %d", ci.CaptureLength, maxRecord)
	}
	if ci.CaptureLength > ci.Length {
		return nil, ci, fmt.Errorf("capture length exceeds original packet length: %d > %d", ci.CaptureLength, ci.Length)
	}
	if !c.nano {
		frac *= 1000
	}
	ci.Timestamp = time.Unix(int64(sec), int64(frac)).UTC()
	rec, err := c.br.Peek(16 + ci.CaptureLength)
	if err != nil {
		if len(rec) == 16 && errors.Is(err, io.EOF) {
			return nil, ci, io.EOF // the header and not a byte more
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, ci, err
	}
	c.br.Discard(16 + ci.CaptureLength)
	return rec[16:], ci, nil
}
