package capture

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestReadBuffersReused: files opened one after the other, closed in
// between, share read buffers (readers); each still reads its own packets,
// and a closed file reads nothing.
func TestReadBuffersReused(t *testing.T) {
	capture := func(payload byte, n int) []byte {
		var b bytes.Buffer
		w := pcapgo.NewWriter(&b)
		if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			data := bytes.Repeat([]byte{payload}, 60+i)
			if err := w.WritePacket(gopacket.CaptureInfo{CaptureLength: len(data), Length: len(data)}, data); err != nil {
				t.Fatal(err)
			}
		}
		return b.Bytes()
	}
	var ng bytes.Buffer
	nw, err := pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		data := bytes.Repeat([]byte{0xcc}, 70+i)
		if err := nw.WritePacket(gopacket.CaptureInfo{CaptureLength: len(data), Length: len(data), InterfaceIndex: 0}, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := nw.Flush(); err != nil {
		t.Fatal(err)
	}
	files := []struct {
		b       []byte
		payload byte
		n, base int
	}{{capture(0xaa, 5), 0xaa, 5, 60}, {capture(0xbb, 2), 0xbb, 2, 60}, {ng.Bytes(), 0xcc, 3, 70}, {capture(0xdd, 4), 0xdd, 4, 60}}
	for round := range 2 {
		for fi, f := range files {
			c, err := openNamed("f.pcap", bytes.NewReader(f.b))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; ; i++ {
				data, _, _, err := c.ReadPacket()
				if err == io.EOF {
					if i != f.n {
						t.Fatalf("round %d file %d: %d packets, want %d", round, fi, i, f.n)
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if want := bytes.Repeat([]byte{f.payload}, f.base+i); !bytes.Equal(data, want) {
					t.Fatalf("round %d file %d packet %d: % x", round, fi, i, data)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := c.ReadPacket(); !errors.Is(err, os.ErrClosed) {
				t.Fatalf("read after Close: %v, want os.ErrClosed", err)
			}
		}
	}
}
