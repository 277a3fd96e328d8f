package flow

import (
	"math/rand/v2"
	"testing"
)

// TestIndexAgainstMap runs random puts, deletes and gets on the index and
// on a Go map, on a small key space so that runs of colliding slots form,
// wrap around the end and are cut by deletions.
func TestIndexAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, keys := range []int{5, 40, 300, 5000} {
		x := newIndex(8)
		var flows chunks
		want := map[Key]int32{}
		var free []int32
		key := func() Key {
			var k Key
			k.ALo, k.BLo = uint64(rng.IntN(keys)), uint64(rng.IntN(3))
			k.PA = uint16(rng.IntN(keys))
			k.Proto = 6
			return k
		}
		for op := range 200000 {
			k := key()
			pos, ok := want[k]
			if got := x.get(&k, flows.c); got != map[bool]int32{true: pos, false: -1}[ok] {
				t.Fatalf("keys %d, op %d: get(%v) = %d, want %d (present %v)", keys, op, k, got, pos, ok)
			}
			switch {
			case ok && rng.IntN(2) == 0:
				x.del(&k, pos)
				delete(want, k)
				*flows.at(pos) = Flow{}
				free = append(free, pos)
			case !ok:
				var p int32
				if n := len(free); n > 0 {
					p, free = free[n-1], free[:n-1]
				} else {
					p = flows.add()
				}
				flows.at(p).Key = k
				x.put(&k, p)
				want[k] = p
			}
			if x.n != len(want) {
				t.Fatalf("n = %d, want %d", x.n, len(want))
			}
		}
		for k, pos := range want {
			if got := x.get(&k, flows.c); got != pos {
				t.Fatalf("keys %d: at the end get(%v) = %d, want %d", keys, k, got, pos)
			}
		}
	}
}

// chunks stores flows as Table does, for the index's tests.
type chunks struct {
	c []*chunk
	n int32
}

func (c *chunks) add() int32 {
	if c.n>>chunkShift == int32(len(c.c)) {
		c.c = append(c.c, new(chunk))
	}
	c.n++
	return c.n - 1
}

func (c *chunks) at(i int32) *Flow { return &c.c[i>>chunkShift][i&(chunkLen-1)] }

func BenchmarkIndexGet(b *testing.B) {
	const n = 200000
	x := newIndex(n)
	var flows chunks
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range int32(n) {
		k := &flows.at(flows.add()).Key
		k.AHi, k.ALo, k.BHi, k.BLo = rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()
		k.PA, k.PB, k.Proto = uint16(rng.Uint32()), 443, 6
		x.put(k, i)
	}
	b.ReportAllocs()
	i := int32(0)
	for b.Loop() {
		if x.get(&flows.at(i).Key, flows.c) < 0 {
			b.Fatal("missing")
		}
		i = (i + 7919) % n
	}
}

func BenchmarkMapGet(b *testing.B) {
	const n = 200000
	m := make(map[Key]int32, n)
	keys := make([]Key, n)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range keys {
		k := &keys[i]
		k.AHi, k.ALo, k.BHi, k.BLo = rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()
		k.PA, k.PB, k.Proto = uint16(rng.Uint32()), 443, 6
		m[*k] = int32(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := m[keys[i]]; !ok {
			b.Fatal("missing")
		}
		i = (i + 7919) % n
	}
}
