package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// maxFuzzPackets bounds the packets read per capture in FuzzOpenFile.
const maxFuzzPackets = 10000

// strictTruncation makes FuzzOpenFile want ErrTruncated from a pcap file
// that ends right after the 16-byte header of a record with data. It was
// off while ReadPacket passed pcapgo's io.EOF (no byte of the record's data
// there) on as a clean end; the corpus file pcap-record-header-only is such
// a file.
var strictTruncation = true // ReadPacket now reports it

// FuzzOpenFile writes the input to a file, opens it with OpenFile and reads
// every packet, then does the same with the input cut at a point derived
// from it. Beyond not panicking or hanging:
//   - every error names the file, and reading ends in io.EOF or an error;
//   - a packet's data is as long as its capture length; a clean end stays
//     clean;
//   - the cut file gives a prefix of the packets of the whole one, and does
//     not open when the whole one does not;
//   - when the whole file reads cleanly, the cut one gives exactly the
//     packets of the records (pcap) or blocks (pcapng) before the cut, then
//     io.EOF when the cut falls between two of them and an error otherwise
//     (ErrTruncated for pcap), and opens exactly when the cut is past the
//     file header (pcap) or the first section header (pcapng).
//
// The seed corpus is testdata/fuzz/FuzzOpenFile; the files named after
// captureFuzzSeeds are written by TestCaptureFuzzSeeds with
// PHONEHOME_WRITE_FUZZ_SEEDS=1.
func FuzzOpenFile(f *testing.F) {
	// In memory, through what OpenFile does after opening the file: a
	// temporary file per execution made this target about five times
	// slower. TestCaptureFuzzSeeds reads its seeds from files with OpenFile.
	const path = "fuzz.pcap"
	f.Fuzz(func(t *testing.T, b []byte) {
		whole := readCapture(t, path, b)
		h := fnv.New32a()
		h.Write(b)
		cut := int(h.Sum32() % uint32(len(b)+1))
		part := readCapture(t, path, b[:cut])
		checkCut(t, b, cut, &whole, &part)
	})
}

type capturePacket struct {
	data []byte
	ci   gopacket.CaptureInfo
	lt   layers.LinkType
}

type captureRead struct {
	openErr error
	pkts    []capturePacket
	end     error // io.EOF, the error that ended reading, or nil after maxFuzzPackets
}

// clean reports a read that opened and ended in io.EOF.
func (r *captureRead) clean() bool { return r.openErr == nil && r.end == io.EOF }

// readCapture reads the capture b, named path, as the pipeline does.
func readCapture(t *testing.T, path string, b []byte) captureRead {
	t.Helper()
	return readWith(t, path, func() (*File, error) { return openNamed(path, bytes.NewReader(b)) })
}

// readCaptureFile reads the capture file at path with OpenFile.
func readCaptureFile(t *testing.T, path string) captureRead {
	t.Helper()
	return readWith(t, path, func() (*File, error) { return OpenFile(path) })
}

func readWith(t *testing.T, path string, open func() (*File, error)) captureRead {
	t.Helper()
	var r captureRead
	c, err := open()
	if err != nil {
		if !strings.HasPrefix(err.Error(), path+": ") {
			t.Fatalf("open error does not name the file: %v", err)
		}
		r.openErr = err
		return r
	}
	if c.Name() != path {
		t.Fatalf("name %q, want %q", c.Name(), path)
	}
	for len(r.pkts) < maxFuzzPackets {
		data, ci, lt, err := c.ReadPacket()
		if err != nil {
			if err != io.EOF && !strings.HasPrefix(err.Error(), path+": ") {
				t.Fatalf("read error after %d packets does not name the file: %v", len(r.pkts), err)
			}
			r.end = err
			break
		}
		if len(data) != ci.CaptureLength {
			t.Fatalf("packet %d: %d bytes, capture length %d", len(r.pkts), len(data), ci.CaptureLength)
		}
		ci.AncillaryData = nil
		r.pkts = append(r.pkts, capturePacket{bytes.Clone(data), ci, lt})
	}
	if r.end == io.EOF {
		if _, _, _, err := c.ReadPacket(); err != io.EOF {
			t.Fatalf("read after io.EOF: %v", err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return r
}

// checkCut compares the read of b[:cut] with that of b.
func checkCut(t *testing.T, b []byte, cut int, whole, part *captureRead) {
	t.Helper()
	if whole.openErr != nil && part.openErr == nil {
		t.Fatalf("cut at %d opens, the whole file does not: %v", cut, whole.openErr)
	}
	if part.openErr != nil && cut == len(b) && whole.openErr == nil {
		t.Fatalf("same file opens once only: %v", part.openErr)
	}
	if whole.end != nil && len(part.pkts) > len(whole.pkts) {
		t.Fatalf("cut at %d: %d packets, the whole file %d", cut, len(part.pkts), len(whole.pkts))
	}
	for i := range min(len(part.pkts), len(whole.pkts)) {
		if !samePacket(&part.pkts[i], &whole.pkts[i]) {
			t.Fatalf("cut at %d: packet %d differs: %+v vs %+v", cut, i, part.pkts[i].ci, whole.pkts[i].ci)
		}
	}
	if !whole.clean() {
		return
	}
	var (
		bounds    []captureBound
		headerEnd int
		pcap      = true
	)
	if len(b) >= 4 && binary.BigEndian.Uint32(b) == 0x0a0d0d0a {
		pcap = false
		var ok bool
		if bounds, headerEnd, ok = ngBounds(b); !ok {
			t.Fatalf("clean pcapng read, but its blocks do not tile the %d bytes of the file", len(b))
		}
	} else {
		headerEnd = 24
		bounds = []captureBound{{24, 0}}
		for i, p := range whole.pkts {
			bounds = append(bounds, captureBound{bounds[i].end + 16 + p.ci.CaptureLength, i + 1})
		}
	}
	last := bounds[len(bounds)-1]
	if pcap && last.end+16 == len(b) && !strictTruncation {
		return // the file ends in a record header: see strictTruncation
	}
	if last.end != len(b) || last.packets != len(whole.pkts) {
		t.Fatalf("clean read of %d bytes and %d packets, records end at %d after %d", len(b), len(whole.pkts), last.end, last.packets)
	}
	if cut < headerEnd {
		if part.openErr == nil {
			t.Fatalf("cut at %d, before the header end %d, opens", cut, headerEnd)
		}
		return
	}
	if part.openErr != nil {
		t.Fatalf("cut at %d, after the header end %d, does not open: %v", cut, headerEnd, part.openErr)
	}
	// The last record or block that ends at or before the cut.
	at := bounds[0]
	for _, bd := range bounds {
		if bd.end > cut {
			break
		}
		at = bd
	}
	if len(part.pkts) != at.packets {
		t.Fatalf("cut at %d: %d packets, want %d (block end %d)", cut, len(part.pkts), at.packets, at.end)
	}
	switch {
	case at.end == cut:
		if part.end != io.EOF {
			t.Fatalf("cut at %d, between records: %v, want io.EOF", cut, part.end)
		}
	case pcap && part.end == io.EOF && cut == at.end+16 && !strictTruncation:
		// The cut falls right after a record header: see strictTruncation.
	case part.end == io.EOF || part.end == nil:
		t.Fatalf("cut at %d, inside a record: %v, want an error", cut, part.end)
	case pcap && !errors.Is(part.end, ErrTruncated):
		t.Fatalf("cut at %d, inside a record: %v, want ErrTruncated", cut, part.end)
	}
}

func samePacket(a, b *capturePacket) bool {
	return bytes.Equal(a.data, b.data) && a.lt == b.lt && a.ci.Timestamp.Equal(b.ci.Timestamp) &&
		a.ci.CaptureLength == b.ci.CaptureLength && a.ci.Length == b.ci.Length && a.ci.InterfaceIndex == b.ci.InterfaceIndex
}

// captureBound is the end of a record or block and the packets read up to
// it.
type captureBound struct{ end, packets int }

// ngBounds walks the blocks of a pcapng file by their declared lengths, as
// the reader does, and returns where each ends with the packets delivered
// so far, and the end of the first section header of version 1.0 (the
// reader skips sections of other versions). ok is false when the blocks do
// not tile b.
func ngBounds(b []byte) (bounds []captureBound, headerEnd int, ok bool) {
	var (
		order   binary.ByteOrder = binary.LittleEndian
		known   bool
		packets int
	)
	headerEnd = -1
	for off := 0; off < len(b); {
		if len(b)-off < 8 {
			return nil, 0, false
		}
		typ := order.Uint32(b[off:])
		if typ == 0x0a0d0d0a {
			if len(b)-off < 12 {
				return nil, 0, false
			}
			switch {
			case binary.LittleEndian.Uint32(b[off+8:]) == 0x1a2b3c4d:
				order = binary.LittleEndian
			case binary.BigEndian.Uint32(b[off+8:]) == 0x1a2b3c4d:
				order = binary.BigEndian
			default:
				return nil, 0, false
			}
			if len(b)-off < 16 {
				return nil, 0, false
			}
			known = order.Uint16(b[off+12:]) == 1 && order.Uint16(b[off+14:]) == 0
		}
		n := int(order.Uint32(b[off+4:]))
		least := 12 // type, length, trailing length
		switch typ {
		case 0x0a0d0d0a, 1, 2, 3, 4, 5, 6:
		default:
			// pcapgo skips a block of a type it does not read after its
			// 8-byte header, without the trailing length: a block of 8 to
			// 11 bytes, malformed but empty, reads as nothing (corpus
			// f9b5bfcd69aa49a6). Nothing is lost; File reads as pcapgo.
			least = 8
		}
		if n < least || n > len(b)-off {
			return nil, 0, false
		}
		off += n
		switch typ {
		case 0x0a0d0d0a:
			if known && headerEnd < 0 {
				headerEnd = off
			}
		case 2, 3, 6: // packet, simple packet, enhanced packet
			if known {
				packets++
			}
		}
		if headerEnd >= 0 {
			bounds = append(bounds, captureBound{off, packets})
		}
	}
	return bounds, headerEnd, headerEnd >= 0
}

// captureFuzzSeed is a named seed of FuzzOpenFile with what reading it
// gives.
type captureFuzzSeed struct {
	name    string
	data    []byte
	packets int
	links   []layers.LinkType // of the packets, in order
	end     error             // io.EOF or ErrTruncated
}

// captureFuzzSeeds builds small captures of the formats OpenFile reads.
func captureFuzzSeeds(tb testing.TB) []captureFuzzSeed {
	eth := func(payload []byte, sport, dport uint16) []byte {
		buf := gopacket.NewSerializeBuffer()
		e := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 53}}
		udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			tb.Fatal(err)
		}
		opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
		if err := gopacket.SerializeLayers(buf, opts, e, ip, udp, gopacket.Payload(payload)); err != nil {
			tb.Fatal(err)
		}
		return buf.Bytes()
	}
	query := []byte("\x1f\x2e\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03dnl\x03geo\x09kaspersky\x03com\x00\x00\x01\x00\x01")
	pkts := [][]byte{
		eth(query, 40000, 53),
		eth([]byte("\x1f\x2e\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x03dnl\x03geo\x09kaspersky\x03com\x00\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x0a"), 53, 40000),
		eth([]byte("x"), 5353, 5353),
	}
	t0 := time.Date(2018, 6, 1, 12, 0, 0, 123456789, time.UTC)
	ci := func(i int, data []byte) gopacket.CaptureInfo {
		return gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * 1500 * time.Millisecond), CaptureLength: len(data), Length: len(data)}
	}
	linkN := func(lt layers.LinkType, n int) []layers.LinkType {
		s := make([]layers.LinkType, n)
		for i := range s {
			s[i] = lt
		}
		return s
	}

	pcapLE := func(nanos bool) []byte {
		var buf bytes.Buffer
		w := pcapgo.NewWriter(&buf)
		if nanos {
			w = pcapgo.NewWriterNanos(&buf)
		}
		if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
			tb.Fatal(err)
		}
		for i, p := range pkts {
			if err := w.WritePacket(ci(i, p), p); err != nil {
				tb.Fatal(err)
			}
		}
		return buf.Bytes()
	}
	// pcapgo writes little-endian only: big-endian files are built here.
	pcapBE := func(nanos bool) []byte {
		magic, frac := uint32(0xa1b2c3d4), 1000
		if nanos {
			magic, frac = 0xa1b23c4d, 1
		}
		var buf bytes.Buffer
		put := func(v ...any) {
			for _, x := range v {
				if err := binary.Write(&buf, binary.BigEndian, x); err != nil {
					tb.Fatal(err)
				}
			}
		}
		put(magic, uint16(2), uint16(4), int32(0), uint32(0), uint32(65535), uint32(layers.LinkTypeEthernet))
		for i, p := range pkts {
			c := ci(i, p)
			put(uint32(c.Timestamp.Unix()), uint32(c.Timestamp.Nanosecond()/frac), uint32(len(p)), uint32(len(p)))
			buf.Write(p)
		}
		return buf.Bytes()
	}

	// pcapng: an Ethernet interface and a raw IP one, packets interleaved,
	// and interface statistics at the end.
	var ngBuf bytes.Buffer
	ng, err := pcapgo.NewNgWriterInterface(&ngBuf, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 262144}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "phonehome fuzz seed", Comment: "two interfaces"}})
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := ng.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw, TimestampResolution: 9})
	if err != nil {
		tb.Fatal(err)
	}
	var ngLinks []layers.LinkType
	for i, p := range pkts {
		c := ci(i, p)
		if err := ng.WritePacket(c, p); err != nil {
			tb.Fatal(err)
		}
		c.InterfaceIndex, c.CaptureLength, c.Length = raw, len(p)-14, len(p)-14
		if err := ng.WritePacket(c, p[14:]); err != nil {
			tb.Fatal(err)
		}
		ngLinks = append(ngLinks, layers.LinkTypeEthernet, layers.LinkTypeRaw)
	}
	if err := ng.WriteInterfaceStats(0, pcapgo.NgInterfaceStatistics{LastUpdate: t0.Add(time.Minute), PacketsReceived: 3, PacketsDropped: 0}); err != nil {
		tb.Fatal(err)
	}
	if err := ng.Flush(); err != nil {
		tb.Fatal(err)
	}
	pcapng := ngBuf.Bytes()
	le := pcapLE(false)
	eths := linkN(layers.LinkTypeEthernet, len(pkts))
	return []captureFuzzSeed{
		{"pcap-le-usec", le, len(pkts), eths, io.EOF},
		{"pcap-le-nsec", pcapLE(true), len(pkts), eths, io.EOF},
		{"pcap-be-usec", pcapBE(false), len(pkts), eths, io.EOF},
		{"pcap-be-nsec", pcapBE(true), len(pkts), eths, io.EOF},
		{"pcapng-two-interfaces", pcapng, 2 * len(pkts), ngLinks, io.EOF},
		// Cut inside the last packet's data.
		{"pcap-truncated", le[:len(le)-len(pkts[2])/2], len(pkts) - 1, eths[:2], ErrTruncated},
		// Cut inside the third enhanced packet block (the second packet on eth0).
		{"pcapng-truncated", pcapng[:bytes.Index(pcapng, pkts[1][:20])+8], 2, ngLinks[:2], ErrTruncated},
	}
}

// TestCaptureFuzzSeeds checks that the seeds of FuzzOpenFile read as
// intended, and rewrites them under testdata/fuzz with
// PHONEHOME_WRITE_FUZZ_SEEDS=1.
func TestCaptureFuzzSeeds(t *testing.T) {
	dir := t.TempDir()
	for _, s := range captureFuzzSeeds(t) {
		path := filepath.Join(dir, s.name)
		if err := os.WriteFile(path, s.data, 0o644); err != nil {
			t.Fatal(err)
		}
		r := readCaptureFile(t, path)
		if r.openErr != nil {
			t.Errorf("%s: %v", s.name, r.openErr)
			continue
		}
		var links []layers.LinkType
		for _, p := range r.pkts {
			links = append(links, p.lt)
		}
		if len(r.pkts) != s.packets || !errors.Is(r.end, s.end) || fmt.Sprint(links) != fmt.Sprint(s.links) {
			t.Errorf("%s: %d packets %v ending with %v, want %d %v and %v", s.name, len(r.pkts), links, r.end, s.packets, s.links, s.end)
		}
	}
	if os.Getenv("PHONEHOME_WRITE_FUZZ_SEEDS") == "" {
		return
	}
	out := filepath.Join("testdata", "fuzz", "FuzzOpenFile")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range captureFuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.data)
		if err := os.WriteFile(filepath.Join(out, s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
