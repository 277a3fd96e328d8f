package decode

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// ethernetFrames reads every Ethernet frame of the captures under the
// directories (pcap and pcapng), at most max per file.
func ethernetFrames(t testing.TB, max int, dirs ...string) (frames [][]byte, files int) {
	t.Helper()
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			ext := strings.ToLower(filepath.Ext(path))
			if ext != ".pcap" && ext != ".pcapng" && ext != ".cap" {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			var next func() ([]byte, error)
			var lt layers.LinkType
			if r, err := pcapgo.NewReader(bytes.NewReader(b)); err == nil {
				lt = r.LinkType()
				next = func() ([]byte, error) { d, _, err := r.ReadPacketData(); return d, err }
			} else if r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions); err == nil {
				lt = r.LinkType()
				next = func() ([]byte, error) { d, _, err := r.ReadPacketData(); return d, err }
			} else {
				return nil
			}
			if lt != layers.LinkTypeEthernet {
				return nil
			}
			files++
			for n := 0; n < max; n++ {
				d, err := next()
				if err != nil { // io.EOF, or a cut capture
					break
				}
				frames = append(frames, append([]byte(nil), d...))
			}
			return nil
		})
	}
	return frames, files
}

// agree decodes frame with the fast path and with gopacket's, and reports
// a difference in the result, the Packet or the counters.
func agree(t *testing.T, frame []byte) {
	t.Helper()
	fastD, refD := New(), New()
	refD.noFast = true
	var pf, pr Packet
	ef := fastD.DecodeAt(layers.LinkTypeEthernet, frame, 0, &pf)
	er := refD.DecodeAt(layers.LinkTypeEthernet, frame, 0, &pr)
	if ef != er || !reflect.DeepEqual(pf, pr) || !reflect.DeepEqual(fastD.Stats, refD.Stats) {
		t.Fatalf("frame %x:\nfast:     %v %+v %+v\ngopacket: %v %+v %+v", frame, ef, pf, fastD.Stats, er, pr, refD.Stats)
	}
}

// TestFastPathAgrees: over every Ethernet frame of the project's captures
// and of the shared corpus (real traffic from Zeek, Suricata and nDPI),
// the fast path and gopacket's decode give the same Packet.
func TestFastPathAgrees(t *testing.T) {
	dirs := []string{"../../testdata"}
	if _, err := os.Stat("../../../../shared/testdata/pcaps"); err == nil {
		dirs = append(dirs, "../../../../shared/testdata/pcaps")
	} else {
		t.Log("../shared/testdata/pcaps absent: the project's captures only")
	}
	frames, files := ethernetFrames(t, 2000, dirs...)
	if len(frames) < 100 {
		t.Fatalf("only %d frames from %d files", len(frames), files)
	}
	fastCount := 0
	for _, f := range frames {
		agree(t, f)
		var p Packet
		if New().fast(f, &p) {
			fastCount++
		}
	}
	t.Logf("%d frames of %d captures agree; %d took the fast path", len(frames), files, fastCount)
	if fastCount < len(frames)/2 {
		t.Errorf("only %d of %d frames took the fast path", fastCount, len(frames))
	}
}

// FuzzFastPath holds the fast path to gopacket's decode on any frame.
func FuzzFastPath(f *testing.F) {
	frames, _ := ethernetFrames(f, 20, "../../testdata")
	for i, fr := range frames {
		if i%7 == 0 {
			f.Add(fr)
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) { agree(t, frame) })
}
