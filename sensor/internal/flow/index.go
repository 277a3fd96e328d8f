package flow

// index maps flow keys to their entries in Table.chunks: open addressing
// with linear probing over one slice of 8-byte slots — the low 32 bits of
// the key's hash (which give the home slot) and the entry's position + 1,
// 0 being an empty slot — at most half full, deletions by backward shift
// so that no tombstones pile up. A look-up hashes the key once, reads a
// slot or two and compares the key of the entry whose hash matches: Go's
// map, for a 37-byte key, cost about a sixth of a worker's time.
type index struct {
	slots []uint64
	mask  uint64 // len(slots) - 1; at most 2^32 - 1, as homes come from 32 bits
	n     int
}

// newIndex returns an index for up to max keys (it grows past that).
func newIndex(max int) index {
	size := 16
	for size < 2*max {
		size *= 2
	}
	return index{slots: make([]uint64, size), mask: uint64(size - 1)}
}

// hashKey mixes the key's words; each step spreads every input bit over
// the low bits, which give the home slot and the stored hash.
func hashKey(k *Key) uint32 {
	const m = 0x9e3779b97f4a7c15
	h := k.AHi*m ^ k.ALo
	h = (h^h>>29)*m ^ k.BHi
	h = (h^h>>29)*m ^ k.BLo
	h = (h^h>>29)*m ^ (uint64(k.PA) | uint64(k.PB)<<16 | uint64(k.Proto)<<32)
	h = (h ^ h>>32) * m
	return uint32(h >> 32)
}

// get returns the position of k in chunks, or -1.
func (x *index) get(k *Key, chunks []*chunk) int32 {
	h := uint64(hashKey(k))
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		s := x.slots[i]
		if s == 0 {
			return -1
		}
		if s>>32 == h {
			if pos := int32(uint32(s)) - 1; chunks[pos>>chunkShift][pos&(chunkLen-1)].Key == *k {
				return pos
			}
		}
	}
}

// put adds k at pos; k must not be in the index.
func (x *index) put(k *Key, pos int32) {
	if 2*(x.n+1) > len(x.slots) {
		x.grow()
	}
	h := uint64(hashKey(k))
	i := h & x.mask
	for x.slots[i] != 0 {
		i = (i + 1) & x.mask
	}
	x.slots[i] = h<<32 | uint64(uint32(pos+1))
	x.n++
}

// del removes k, which must be in the index at pos.
func (x *index) del(k *Key, pos int32) {
	want := uint64(uint32(pos + 1))
	i := uint64(hashKey(k)) & x.mask
	for x.slots[i]&0xffffffff != want {
		i = (i + 1) & x.mask
	}
	// Backward shift: each later slot of the run moves into the hole when
	// its home is not between the hole and itself (cyclically), so that
	// look-ups never stop at an empty slot before their key.
	for j := (i + 1) & x.mask; x.slots[j] != 0; j = (j + 1) & x.mask {
		home := x.slots[j] >> 32 & x.mask
		if (j-home)&x.mask >= (j-i)&x.mask {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = 0
	x.n--
}

func (x *index) grow() {
	old := x.slots
	x.slots = make([]uint64, 2*len(old))
	x.mask = uint64(len(x.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := s >> 32 & x.mask
		for x.slots[i] != 0 {
			i = (i + 1) & x.mask
		}
		x.slots[i] = s
	}
}
