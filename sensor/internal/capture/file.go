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
}

// OpenFile opens a pcap or pcapng capture, recognised by its magic number,
// not by its name.
func OpenFile(name string) (*File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*File, error) {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fail(fmt.Errorf("%w: file is %d bytes long", ErrNotCapture, len(magic)))
		}
		return fail(err)
	}
	c := &File{name: name, f: f}
	switch binary.BigEndian.Uint32(magic) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		c.pcap, err = pcapgo.NewReader(br)
		if err != nil {
			return fail(fmt.Errorf("%w: %w", ErrNotCapture, err))
		}
		// pcapgo caps packets at the file's snap length; some writers put 0
		// or a small number there while storing bigger packets.
		c.pcap.SetSnaplen(256 << 10)
	case 0x0a0d0d0a:
		c.ng, err = pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return fail(fmt.Errorf("%w: %w", ErrNotCapture, err))
		}
	default:
		return fail(fmt.Errorf("%w: unknown magic number %#08x", ErrNotCapture, binary.BigEndian.Uint32(magic)))
	}
	return c, nil
}

// Name returns the file name.
func (c *File) Name() string { return c.name }

// Close closes the file.
func (c *File) Close() error { return c.f.Close() }

// ReadPacket returns the next packet. A file cut in the middle of a record
// gives an error wrapping ErrTruncated.
func (c *File) ReadPacket() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	var (
		data []byte
		ci   gopacket.CaptureInfo
		lt   layers.LinkType
		err  error
	)
	if c.pcap != nil {
		data, ci, err = c.pcap.ZeroCopyReadPacketData()
		lt = c.pcap.LinkType()
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
