package pipeline

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

// KindDNSLearned is the hit kind of a contact with an address that a
// matched name resolved to: the name was not on this flow (no SNI, ECH,
// an IP-literal connection, a cached answer) but the DNS answer was seen.
const KindDNSLearned = inventory.KindDNSLearned

// LearnedConfig bounds the learned-address table.
type LearnedConfig struct {
	MaxEntries int           // cap on addresses remembered; the oldest of a small sample is evicted (counted)
	MinTTL     time.Duration // answers with shorter TTLs are kept this long (clients cache longer than told)
	MaxTTL     time.Duration // and longer ones no longer than this
}

// DefaultLearnedConfig is used for zero fields.
var DefaultLearnedConfig = LearnedConfig{MaxEntries: 65536, MinTTL: 5 * time.Minute, MaxTTL: 24 * time.Hour}

const learnedShards = 16

// Learned remembers, for the addresses in DNS answers to matched names,
// which name and rules they came from, for the answer's TTL (clamped).
// Shared by the workers: the answer and the later connection are usually
// on flows of different workers. Sharded, bounded, expired on packet
// time; looked up once per new flow, never per packet.
type Learned struct {
	cfg    LearnedConfig
	shards [learnedShards]learnedShard

	Added, Evicted, Expired atomic.Uint64
}

type learnedShard struct {
	mu sync.Mutex
	m  map[netip.Addr]learnedEntry
}

type learnedEntry struct {
	name    string
	hits    []rules.Hit // the name's hits (shared, never modified)
	expires int64       // packet time
	added   int64
}

// NewLearned returns an empty table.
func NewLearned(cfg LearnedConfig) *Learned {
	d := DefaultLearnedConfig
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = d.MaxEntries
	}
	if cfg.MinTTL <= 0 {
		cfg.MinTTL = d.MinTTL
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = d.MaxTTL
	}
	cfg.MaxTTL = max(cfg.MaxTTL, cfg.MinTTL)
	l := &Learned{cfg: cfg}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]learnedEntry)
	}
	return l
}

func (l *Learned) shard(a netip.Addr) *learnedShard {
	b := a.As16()
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return &l.shards[h%learnedShards]
}

// Learn remembers that name, which matched hits, resolved to a with the
// given TTL at packet time now.
func (l *Learned) Learn(a netip.Addr, name string, hits []rules.Hit, ttl uint32, now int64) {
	d := min(max(time.Duration(ttl)*time.Second, l.cfg.MinTTL), l.cfg.MaxTTL)
	s := l.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	added := now
	if old, ok := s.m[a]; !ok {
		if len(s.m) >= max(l.cfg.MaxEntries/learnedShards, 1) {
			l.evict(s, now)
		}
		l.Added.Add(1)
	} else if old.expires > now {
		added = min(old.added, now) // known since the first answer
	}
	s.m[a] = learnedEntry{name: name, hits: hits, expires: now + int64(d), added: added}
}

// evict drops expired entries met in a short walk, or else the oldest of
// a sample: map order is random, so this is an approximate LRU that
// costs O(sample), not O(n).
func (l *Learned) evict(s *learnedShard, now int64) {
	const sample = 8
	var victim netip.Addr
	oldest := int64(1<<63 - 1)
	n := 0
	for a, e := range s.m {
		if e.expires <= now {
			delete(s.m, a)
			l.Expired.Add(1)
			return
		}
		if e.added < oldest {
			victim, oldest = a, e.added
		}
		if n++; n == sample {
			break
		}
	}
	delete(s.m, victim)
	l.Evicted.Add(1)
}

// Lookup returns the name and hits a was learned from, if it was by
// packet time now and has not expired. With several workers, an answer
// and a connection close together in packet time may be processed in
// either order; a connection processed first is not matched (the
// workers are at most a few batches apart, so this only concerns
// connections within milliseconds of the answer).
func (l *Learned) Lookup(a netip.Addr, now int64) (string, []rules.Hit, bool) {
	s := l.shard(a)
	s.mu.Lock()
	e, ok := s.m[a]
	if ok && e.expires <= now {
		delete(s.m, a)
		l.Expired.Add(1)
		ok = false
	}
	s.mu.Unlock()
	if ok && e.added > now {
		// Learned from an answer later in packet time (another worker is
		// ahead): this flow came first and owes nothing to that answer.
		return "", nil, false
	}
	if !ok {
		return "", nil, false
	}
	return e.name, e.hits, true
}

// Len returns the number of addresses remembered.
func (l *Learned) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
