package capture

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"
)

// pcapgoPackets reads b with pcapgo alone, as File did before it read
// classic pcap records itself.
func pcapgoPackets(b []byte) (pkts [][]byte, cis []string, err error) {
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	r.SetSnaplen(maxRecord)
	for len(pkts) < 1000 {
		d, ci, err := r.ReadPacketData()
		if err != nil {
			return pkts, cis, err
		}
		pkts = append(pkts, d)
		cis = append(cis, ci.Timestamp.String()+" "+string(rune(ci.CaptureLength))+string(rune(ci.Length)))
	}
	return pkts, cis, nil
}

// FuzzPcapRecords holds File's own reading of classic pcap records to
// pcapgo's: the same packets, times and lengths, and the same kind of end
// (clean, truncated, or another error).
func FuzzPcapRecords(f *testing.F) {
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	w.WriteFileHeader(65535, 1)
	f.Add(buf.Bytes())
	for _, seed := range captureFuzzSeeds(f) {
		f.Add(seed.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantCI, wantErr := pcapgoPackets(b)
		c, err := openReader("x.pcap", bytes.NewReader(b))
		if err != nil {
			return // not a capture
		}
		defer c.Close() // its read buffer back for the next execution
		if c.br == nil {
			return // pcapng
		}
		consumed := 24
		for i := 0; ; i++ {
			d, ci, _, err := c.ReadPacket()
			if err == nil {
				consumed += 16 + len(d)
			}
			if i == len(want) || err != nil {
				switch {
				case i < len(want):
					t.Fatalf("packet %d: %v; pcapgo read %d packets", i, err, len(want))
				case i == 1000:
					return
				case err == nil:
					t.Fatalf("packet %d read; pcapgo stopped: %v", i, wantErr)
				case errors.Is(wantErr, io.EOF) && len(b)-consumed == 16:
					// A record header and nothing after it: pcapgo's
					// io.EOF, a cut capture for File (as before).
					if !errors.Is(err, ErrTruncated) {
						t.Fatalf("end after a lone record header: %v, want ErrTruncated", err)
					}
				case errors.Is(wantErr, io.EOF) != errors.Is(err, io.EOF):
					t.Fatalf("end: %v; pcapgo: %v", err, wantErr)
				}
				return
			}
			got := ci.Timestamp.String() + " " + string(rune(ci.CaptureLength)) + string(rune(ci.Length))
			if !bytes.Equal(d, want[i]) || got != wantCI[i] {
				t.Fatalf("packet %d differs: %x %s, pcapgo %x %s", i, d, got, want[i], wantCI[i])
			}
		}
	})
}
