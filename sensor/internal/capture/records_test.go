package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

type readPkt struct {
	data    string
	ts      int64
	wireLen int
	lt      layers.LinkType
}

// viaReadPacket reads b one packet at a time.
func viaReadPacket(b []byte) ([]readPkt, error) {
	c, err := openReader("x.pcap", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []readPkt
	for {
		d, ci, lt, err := c.ReadPacket()
		if err != nil {
			return out, err
		}
		out = append(out, readPkt{string(d), ci.Timestamp.UnixNano(), ci.Length, lt})
	}
}

// viaReadRecords reads b with ReadRecords into a buffer of bufCap bytes,
// through wrap when set (a source that hands over little at a time).
func viaReadRecords(b []byte, bufCap int, wrap func(io.Reader) io.Reader) ([]readPkt, error) {
	var r io.Reader = bytes.NewReader(b)
	if wrap != nil {
		r = wrap(r)
	}
	c, err := openReader("x.pcap", r)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rr := InPlace(c)
	if rr == nil {
		return nil, errors.New("not in place")
	}
	var out []readPkt
	buf := make([]byte, 0, bufCap)
	var recs []Record
	for {
		buf, recs, err = rr.ReadRecords(buf, recs[:0])
		for _, r := range recs {
			out = append(out, readPkt{string(buf[r.Off : r.Off+r.Len]), r.TS, int(r.WireLen), r.LinkType})
		}
		if err != nil {
			return out, err
		}
	}
}

// sameReading compares ReadRecords, with a buffer of bufCap bytes, to
// ReadPacket on b: the same packets and the same end, word for word. A
// buffer too small for a record (tests only) ends early, after the same
// packets.
func sameReading(b []byte, bufCap int, wrap func(io.Reader) io.Reader) error {
	want, wantErr := viaReadPacket(b)
	got, err := viaReadRecords(b, bufCap, wrap)
	if errors.Is(err, errRecordTooBig) {
		if len(got) > len(want) {
			return fmt.Errorf("%d packets before a record too big, ReadPacket read %d", len(got), len(want))
		}
		want = want[:len(got)]
	} else if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		return fmt.Errorf("end %q, ReadPacket %q (after %d and %d packets)", err, wantErr, len(got), len(want))
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d packets, ReadPacket %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("packet %d: %x %d %d %d, ReadPacket %x %d %d %d", i,
				got[i].data, got[i].ts, got[i].wireLen, got[i].lt, want[i].data, want[i].ts, want[i].wireLen, want[i].lt)
		}
	}
	return nil
}

// bigCapture writes n packets of random sizes (up to maxSize bytes) and
// times, microsecond or nanosecond.
func bigCapture(t testing.TB, n, maxSize int, nanos bool) []byte {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if nanos {
		w = pcapgo.NewWriterNanos(&buf)
	}
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	ts := time.Date(2026, 11, 28, 23, 0, 0, 0, time.UTC)
	for i := range n {
		size := rng.IntN(maxSize)
		if i%7 == 0 {
			size = rng.IntN(100)
		}
		d := make([]byte, size)
		for j := range d {
			d[j] = byte(rng.Uint32())
		}
		ts = ts.Add(time.Duration(rng.IntN(3e6)))
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: size, Length: size + rng.IntN(2)}, d); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestReadRecords: ReadRecords reads what ReadPacket reads, whole and
// cut anywhere, with the production buffer and with small ones that cut
// records across calls; the demo capture too.
func TestReadRecords(t *testing.T) {
	defer func(m int) { minRecordBuf = m }(minRecordBuf)
	minRecordBuf = 64
	inputs := map[string][]byte{
		"micros": bigCapture(t, 400, 9000, false),
		"nanos":  bigCapture(t, 400, 9000, true),
	}
	if demo, err := os.ReadFile(filepath.Join("..", "..", "testdata", "demo.pcap")); err == nil {
		inputs["demo"] = demo
	} else {
		t.Fatal(err)
	}
	for _, s := range captureFuzzSeeds(t) {
		inputs["seed-"+s.name] = s.data
	}
	for name, b := range inputs {
		c, err := openReader(name, bytes.NewReader(b))
		if err != nil {
			continue // not a capture
		}
		inPlace := InPlace(c) != nil
		c.Close()
		if !inPlace {
			continue // pcapng
		}
		cuts := []int{len(b), len(b) - 1, len(b) - 16, len(b) / 2, 25, 24 + 16, 24 + 17}
		for _, cut := range cuts {
			if cut < 24 || cut > len(b) {
				continue
			}
			for _, bufCap := range []int{MinRecordBuf, 20000, 9100} {
				if err := sameReading(b[:cut], bufCap, nil); err != nil {
					t.Errorf("%s cut at %d of %d, buffer %d: %v", name, cut, len(b), bufCap, err)
				}
			}
		}
	}
	// The production buffer reads a capture of several of its sizes in
	// several calls, from the file and from a source that hands over
	// half of what is asked (a pipe).
	b := inputs["micros"]
	if len(b) < 2*MinRecordBuf {
		t.Fatalf("capture of %d bytes: too small to cross buffers", len(b))
	}
	for _, bufCap := range []int{MinRecordBuf, 9100} {
		if err := sameReading(b[:len(b)-5], bufCap, iotest.HalfReader); err != nil {
			t.Errorf("half reader, buffer %d: %v", bufCap, err)
		}
	}
}

// TestReadRecordsNotMixed: pcapng is not read in place; a closed file
// says so.
func TestReadRecordsNotMixed(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	w.Flush()
	c, err := openReader("x.pcapng", bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if InPlace(c) != nil {
		t.Error("pcapng read in place")
	}
	c, err = openReader("x.pcap", bytes.NewReader(bigCapture(t, 3, 9000, false)))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, _, err := c.ReadRecords(make([]byte, 0, MinRecordBuf), nil); !errors.Is(err, os.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if _, _, err := (&File{}).ReadRecords(nil, nil); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("zero File: %v", err)
	}
}

// FuzzReadRecords holds ReadRecords to ReadPacket (sameReading) with a
// small buffer, so that records are cut across calls, and with the
// production one.
func FuzzReadRecords(f *testing.F) {
	// Small inputs: the engine minimises every new input it keeps, which
	// took seconds on captures of tens of kilobytes.
	f.Add(bigCapture(f, 12, 120, false), uint16(100))
	f.Add(bigCapture(f, 12, 120, true), uint16(200))
	for _, s := range captureFuzzSeeds(f) {
		f.Add(s.data, uint16(64))
	}
	f.Fuzz(func(t *testing.T, b []byte, small uint16) {
		defer func(m int) { minRecordBuf = m }(minRecordBuf)
		minRecordBuf = 16
		c, err := openReader("x", bytes.NewReader(b))
		if err != nil {
			return
		}
		inPlace := InPlace(c) != nil
		c.Close()
		if !inPlace {
			return
		}
		for _, bufCap := range []int{16 + int(small)%4096, MinRecordBuf} {
			if err := sameReading(b, bufCap, nil); err != nil {
				t.Fatalf("buffer %d: %v", bufCap, err)
			}
		}
	})
}
