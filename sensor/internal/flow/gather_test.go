package flow

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestGather(t *testing.T) {
	msg := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	type seg struct{ off, n int }
	tests := []struct {
		name string
		segs []seg
		want int // contiguous bytes at the end
	}{
		{"in order", []seg{{0, 10}, {10, 10}, {20, 16}}, 36},
		{"reversed", []seg{{20, 16}, {10, 10}, {0, 10}}, 36},
		{"hole stays", []seg{{0, 10}, {20, 16}}, 10},
		{"retransmission", []seg{{0, 10}, {0, 10}, {10, 26}}, 36},
		{"overlaps", []seg{{5, 10}, {0, 8}, {12, 20}, {30, 6}}, 36},
		{"front missing", []seg{{10, 26}}, 0},
		{"adjacent pieces merge", []seg{{10, 5}, {15, 5}, {20, 16}, {0, 10}}, 36},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g Gather
			g.Reset(1000)
			for _, s := range tt.segs {
				if _, err := g.Add(1000+uint32(s.off), msg[s.off:s.off+s.n], 64); err != nil {
					t.Fatal(err)
				}
			}
			if g.Len() != tt.want || !bytes.Equal(g.Bytes(), msg[:tt.want]) {
				t.Fatalf("got %q, want %q", g.Bytes(), msg[:tt.want])
			}
		})
	}
}

func TestGatherFirstCopyWins(t *testing.T) {
	var g Gather
	g.Reset(0)
	g.Add(4, []byte("AAAA"), 64)
	g.Add(0, []byte("bbbbBBBBcccc"), 64) // the second copy of 4..8 is ignored
	if got := string(g.Bytes()); got != "bbbbAAAAcccc" {
		t.Fatalf("got %q", got)
	}
}

func TestGatherLimits(t *testing.T) {
	var g Gather
	g.Reset(0)
	if _, err := g.Add(60, make([]byte, 10), 64); err != ErrGatherFull {
		t.Fatalf("beyond cap: err %v", err)
	}
	for i := range maxPieces {
		if _, err := g.Add(uint32(2+4*i), []byte{1}, 64); err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
	}
	if _, err := g.Add(50, []byte{1}, 64); err != ErrGatherHoles {
		t.Fatalf("ninth piece: err %v", err)
	}
	// A piece touching an existing one still fits.
	if _, err := g.Add(3, []byte{1}, 64); err != nil {
		t.Fatalf("merging piece: %v", err)
	}
	// Data before Base and wrapped sequence numbers.
	g.Reset(0xfffffff0)
	grew, err := g.Add(0xffffffe0, make([]byte, 0x20), 64) // ends at 0xfffffff0+0x10
	if err != nil || !grew || g.Len() != 0x10 {
		t.Fatalf("wrapped: grew %v err %v len %d", grew, err, g.Len())
	}
}

// TestGatherRandom checks against a simple model: random segments of a
// message, shuffled, duplicated; the prefix is always the message's.
func TestGatherRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	msg := make([]byte, 3000)
	for i := range msg {
		msg[i] = byte(r.IntN(256))
	}
	for round := 0; round < 2000; round++ {
		var segs [][2]int
		for off := 0; off < len(msg); {
			n := 1 + r.IntN(700)
			n = min(n, len(msg)-off)
			segs = append(segs, [2]int{off, n})
			off += n
		}
		for range r.IntN(4) { // duplicates and overlaps
			a := r.IntN(len(msg))
			segs = append(segs, [2]int{a, min(1+r.IntN(900), len(msg)-a)})
		}
		r.Shuffle(len(segs), func(i, j int) { segs[i], segs[j] = segs[j], segs[i] })
		var g Gather
		g.Reset(uint32(r.Uint32()))
		have := make([]bool, len(msg))
		for _, s := range segs {
			_, err := g.Add(g.Base+uint32(s[0]), msg[s[0]:s[0]+s[1]], 4096)
			if err == ErrGatherHoles {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := s[0]; i < s[0]+s[1]; i++ {
				have[i] = true
			}
			want := 0
			for want < len(have) && have[want] {
				want++
			}
			if g.Len() != want || !bytes.Equal(g.Bytes(), msg[:want]) {
				t.Fatalf("round %d: contiguous %d, want %d", round, g.Len(), want)
			}
		}
	}
}

func FuzzGather(f *testing.F) {
	f.Add([]byte{0, 10, 20, 5, 10, 10}, uint32(0))
	f.Add([]byte{200, 30, 0, 40, 100, 150}, uint32(0xffffff00))
	f.Fuzz(func(t *testing.T, ops []byte, base uint32) {
		msg := make([]byte, 512)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		var g Gather
		g.Reset(base)
		for i := 0; i+1 < len(ops); i += 2 {
			off, n := int(ops[i])*2, int(ops[i+1])
			if off+n > len(msg) {
				n = len(msg) - off
			}
			g.Add(base+uint32(off), msg[off:off+n], 400)
			if g.Len() > 400 || !bytes.Equal(g.Bytes(), msg[:g.Len()]) {
				t.Fatalf("prefix wrong after %d ops", i/2+1)
			}
			for j := 1; j < g.n; j++ {
				if g.pieces[j-1].end >= g.pieces[j].start {
					t.Fatalf("pieces not disjoint: %v", g.pieces[:g.n])
				}
			}
		}
	})
}

func BenchmarkGatherTwoSegments(b *testing.B) {
	msg := make([]byte, 1800)
	var g Gather
	b.ReportAllocs()
	for b.Loop() {
		g.Reset(7)
		g.Add(7+1460, msg[1460:], 16<<10)
		g.Add(7, msg[:1460], 16<<10)
	}
}
