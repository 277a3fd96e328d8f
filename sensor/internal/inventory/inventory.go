// Package inventory keeps the hosts that phoned home: first and last
// contact, categories, names, counts, and the dedup state that turns
// repeated contacts into one alert per host, rule and window.
package inventory

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
)

// DefaultHomeNets are the networks whose hosts are inventoried when no
// --home-net is given: RFC 1918, shared address space (RFC 6598),
// link-local, and IPv6 unique-local and link-local.
var DefaultHomeNets = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// Config sets the inventory's bounds and policy.
type Config struct {
	HomeNets    []netip.Prefix
	DedupWindow time.Duration // one alert per host × rule per window (default 24h, aligned to UTC days)
	MaxHosts    int           // hosts beyond this are counted, not kept
	MaxNames    int           // names kept per host
	// Deadlines gives each new host its removal deadline (nil: none).
	Deadlines *Deadlines
	// Assets names hosts (by IP or MAC) and may set their deadline.
	Assets *Assets
	// Observer is this sensor's name, recorded with each host.
	Observer string
	// Persist makes the inventory keep deltas for a Store (TakeBatch).
	Persist bool
	// MaxEvidence bounds the evidence rows waiting for a flush (default
	// 65536); beyond, rows are counted and dropped, hosts still merged.
	MaxEvidence int
}

// Category records when a host first and last contacted one category.
type Category struct {
	First, Last time.Time
	Count       uint64
	Traffic     Traffic // of the flows that matched this category
}

// Traffic is what matched flows carried: payload bytes and packets, out
// (sent by the host) and in.
type Traffic struct {
	BytesOut, BytesIn     uint64
	PacketsOut, PacketsIn uint64
	Flows                 uint64
}

func (t *Traffic) add(o Traffic) {
	t.BytesOut += o.BytesOut
	t.BytesIn += o.BytesIn
	t.PacketsOut += o.PacketsOut
	t.PacketsIn += o.PacketsIn
	t.Flows += o.Flows
}

// Evidence is the last contact that matched.
type Evidence struct {
	Time        time.Time
	Protocol    string
	Name        string
	Destination netip.AddrPort
	RuleID      string
	Reason      string
}

// Host is one inventoried host.
type Host struct {
	IP         netip.Addr
	MAC        string
	Hostname   string    // from DHCP on the wire or the asset file
	Owner      string    // from the asset file
	Site       string    // from the asset file
	Deadline   time.Time // removal deadline in force; zero: none
	Observer   string    // the sensor that last saw it
	FirstSeen  time.Time
	LastSeen   time.Time
	Contacts   uint64
	Categories map[rules.Category]*Category
	Names      []string // sorted, bounded by Config.MaxNames
	NamesCut   uint64   // names not kept because of the bound
	Rules      []string // sorted rule ids
	Profiles   []string
	Last       Evidence
	Traffic    Traffic // of every flow that matched
}

// Contact is one matched observation, as the inventory sees it.
type Contact struct {
	Time        time.Time
	Client      netip.Addr
	MAC         string
	Destination netip.AddrPort
	Protocol    string
	Name        string
	Hit         rules.Hit
}

// Stats counts inventory events.
type Stats struct {
	Contacts        uint64
	Alerts          uint64
	Suppressed      uint64 // contacts inside an open dedup window
	ExternalClients uint64 // contacts whose client is outside the home nets
	HostsRefused    uint64 // new hosts beyond MaxHosts
	Overdue         uint64 // contacts after the host's removal deadline
	EvidenceDropped uint64 // evidence rows not persisted: the flush queue was full
}

type dedupKey struct {
	client netip.Addr
	rule   string
	// learned sets apart contacts matched through an address learned
	// from DNS: a connection to the server is evidence of its own, beyond
	// the look-up of its name.
	learned bool
	window  int64
}

// KindDNSLearned is the rules.Hit kind of contacts matched through a
// learned address (pipeline.KindDNSLearned).
const KindDNSLearned = "dns-learned"

// Inventory is safe for concurrent use.
type Inventory struct {
	mu     sync.Mutex
	cfg    Config
	hosts  map[netip.Addr]*Host
	dedup  map[dedupKey]struct{}
	window int64 // newest window seen, for purging dedup keys
	stats  Stats

	// Deltas since the last TakeBatch (Config.Persist).
	pending  map[netip.Addr]*HostDelta
	evidence []EvidenceRow
	daily    map[dayKey]uint64
	urgent   bool // a host was seen first or crossed its deadline: flush now
	// notify is signalled (without blocking) when urgent is set.
	notify chan struct{}

	// Host names seen in DHCP, by address and by MAC (bounded).
	dhcpByIP  map[netip.Addr]string
	dhcpByMAC map[string]string
}

// maxDHCPNames bounds the names remembered from DHCP.
const maxDHCPNames = 65536

type dayKey struct {
	ip  netip.Addr
	day int64
	cat rules.Category
}

// New returns an empty inventory.
func New(cfg Config) *Inventory {
	if cfg.HomeNets == nil {
		cfg.HomeNets = DefaultHomeNets
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = 24 * time.Hour
	}
	if cfg.MaxHosts <= 0 {
		cfg.MaxHosts = 1 << 20
	}
	if cfg.MaxNames <= 0 {
		cfg.MaxNames = 64
	}
	if cfg.MaxEvidence <= 0 {
		cfg.MaxEvidence = 65536
	}
	return &Inventory{cfg: cfg, hosts: map[netip.Addr]*Host{}, dedup: map[dedupKey]struct{}{},
		pending: map[netip.Addr]*HostDelta{}, daily: map[dayKey]uint64{}, notify: make(chan struct{}, 1),
		dhcpByIP: map[netip.Addr]string{}, dhcpByMAC: map[string]string{}}
}

// Internal reports whether a is in the home nets.
func (inv *Inventory) Internal(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range inv.cfg.HomeNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Observe records a contact and reports whether it opens a new dedup
// window for its client and rule, that is, whether it should be alerted.
// Contacts from clients outside the home nets are alerted but not kept.
func (inv *Inventory) Observe(c Contact) (alert bool) {
	alert, _ = inv.ObserveDeadline(c)
	return alert
}

// ObserveDeadline is Observe that also reports whether the contact came
// after the host's removal deadline: the host is still phoning home.
func (inv *Inventory) ObserveDeadline(c Contact) (alert, overdue bool) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.stats.Contacts++
	w := c.Time.UnixNano() / int64(inv.cfg.DedupWindow)
	if w > inv.window {
		// Keys of windows before the previous one can no longer match:
		// packet time only moves forward (give or take one window).
		for k := range inv.dedup {
			if k.window < w-1 {
				delete(inv.dedup, k)
			}
		}
		inv.window = w
	}
	k := dedupKey{client: c.Client, rule: c.Hit.Rule.ID, learned: c.Hit.Kind == KindDNSLearned, window: w}
	if _, seen := inv.dedup[k]; seen {
		inv.stats.Suppressed++
	} else {
		inv.dedup[k] = struct{}{}
		inv.stats.Alerts++
		alert = true
	}
	if !inv.Internal(c.Client) {
		inv.stats.ExternalClients++
		return alert, false
	}
	h := inv.hosts[c.Client]
	if h == nil {
		if len(inv.hosts) >= inv.cfg.MaxHosts {
			inv.stats.HostsRefused++
			return alert, false
		}
		h = &Host{IP: c.Client, FirstSeen: c.Time, Categories: map[rules.Category]*Category{}, Observer: inv.cfg.Observer}
		if d := inv.cfg.Deadlines; d != nil {
			h.Deadline = d.For(c.Client)
		}
		inv.hosts[c.Client] = h
		inv.urgent = true
	}
	if c.MAC != "" {
		h.MAC = c.MAC
	}
	if h.Hostname == "" {
		if n, ok := inv.dhcpByIP[h.IP]; ok {
			h.Hostname = n
		} else if n, ok := inv.dhcpByMAC[h.MAC]; ok && h.MAC != "" {
			h.Hostname = n
		}
	}
	if a := inv.cfg.Assets; a != nil && h.Owner == "" && h.Site == "" {
		if as, ok := a.Lookup(h.IP, h.MAC); ok {
			// The asset file is the authority on names.
			h.Hostname, h.Owner, h.Site = as.Hostname, as.Owner, as.Site
			if !as.Deadline.IsZero() {
				h.Deadline = as.Deadline
			}
		}
	}
	if !h.Deadline.IsZero() && !c.Time.Before(h.Deadline) {
		overdue = true
		inv.stats.Overdue++
		if h.LastSeen.Before(h.Deadline) {
			inv.urgent = true // crossed its deadline
		}
	}
	if c.Time.Before(h.FirstSeen) {
		h.FirstSeen = c.Time
	}
	if c.Time.After(h.LastSeen) {
		h.LastSeen = c.Time
	}
	h.Contacts++
	r := c.Hit.Rule
	cat := h.Categories[r.Category]
	if cat == nil {
		cat = &Category{First: c.Time}
		h.Categories[r.Category] = cat
	}
	cat.Count++
	if c.Time.After(cat.Last) {
		cat.Last = c.Time
	}
	if c.Name != "" {
		if i, found := slices.BinarySearch(h.Names, c.Name); !found {
			if len(h.Names) < inv.cfg.MaxNames {
				h.Names = slices.Insert(h.Names, i, c.Name)
			} else {
				h.NamesCut++
			}
		}
	}
	if i, found := slices.BinarySearch(h.Rules, r.ID); !found {
		h.Rules = slices.Insert(h.Rules, i, r.ID)
	}
	if r.Profile != nil {
		if i, found := slices.BinarySearch(h.Profiles, r.Profile.ID); !found {
			h.Profiles = slices.Insert(h.Profiles, i, r.Profile.ID)
		}
	}
	ev := Evidence{Time: c.Time, Protocol: c.Protocol, Name: c.Name, Destination: c.Destination, RuleID: r.ID, Reason: c.Hit.Reason()}
	if !c.Time.Before(h.Last.Time) {
		h.Last = ev
	}
	if inv.cfg.Persist {
		inv.recordDelta(h, c, ev)
		if inv.urgent {
			select {
			case inv.notify <- struct{}{}:
			default:
			}
		}
	}
	return alert, overdue
}

// recordDelta adds a contact to the pending deltas.
func (inv *Inventory) recordDelta(h *Host, c Contact, ev Evidence) {
	d := inv.delta(h)
	if d.FirstSeen.IsZero() || c.Time.Before(d.FirstSeen) {
		d.FirstSeen = c.Time
	}
	if c.Time.After(d.LastSeen) {
		d.LastSeen = c.Time
	}
	d.Contacts++
	cat := c.Hit.Rule.Category
	dc := d.Categories[cat]
	if dc == nil {
		dc = &Category{First: c.Time}
		d.Categories[cat] = dc
	}
	dc.Count++
	if c.Time.Before(dc.First) {
		dc.First = c.Time
	}
	if c.Time.After(dc.Last) {
		dc.Last = c.Time
	}
	if c.Name != "" && !slices.Contains(d.Names, c.Name) && len(d.Names) < MaxNamesStored {
		d.Names = append(d.Names, c.Name)
	}
	if !slices.Contains(d.Rules, c.Hit.Rule.ID) {
		d.Rules = append(d.Rules, c.Hit.Rule.ID)
	}
	if !ev.Time.Before(d.Last.Time) {
		d.Last = ev
	}
	if len(inv.evidence) < inv.cfg.MaxEvidence {
		inv.evidence = append(inv.evidence, EvidenceRow{IP: h.IP, Time: c.Time, Category: cat, Evidence: ev, Observer: inv.cfg.Observer})
	} else {
		inv.stats.EvidenceDropped++
	}
	day := c.Time.UTC().Truncate(24 * time.Hour).UnixNano()
	inv.daily[dayKey{h.IP, day, cat}]++
}

// delta returns the pending delta of h, with its identity fields.
func (inv *Inventory) delta(h *Host) *HostDelta {
	d := inv.pending[h.IP]
	if d == nil {
		d = &HostDelta{IP: h.IP, Categories: map[rules.Category]*Category{}}
		inv.pending[h.IP] = d
	}
	d.MAC, d.Hostname, d.Owner, d.Site, d.Deadline, d.Observer = h.MAC, h.Hostname, h.Owner, h.Site, h.Deadline, h.Observer
	return d
}

// TakeBatch returns what changed since the last call, for a Store, and
// whether something urgent (a new host, a deadline crossed) is in it.
func (inv *Inventory) TakeBatch() (b *Batch, urgent bool) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	b = &Batch{Evidence: inv.evidence}
	for _, d := range inv.pending {
		b.Hosts = append(b.Hosts, *d)
	}
	slices.SortFunc(b.Hosts, func(x, y HostDelta) int { return x.IP.Compare(y.IP) })
	for k, n := range inv.daily {
		b.Daily = append(b.Daily, DayCount{IP: k.ip, Day: time.Unix(0, k.day).UTC(), Category: k.cat, Contacts: n})
	}
	urgent = inv.urgent
	inv.pending, inv.evidence, inv.daily, inv.urgent = map[netip.Addr]*HostDelta{}, nil, map[dayKey]uint64{}, false
	return b, urgent
}

// Urgent reports whether a new host or a crossed deadline waits for a
// flush.
func (inv *Inventory) Urgent() bool {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.urgent
}

// AddFlow adds what one matched flow carried to its client's record and
// to each category the flow matched. Flows of clients that are not
// inventoried (outside the home nets, or never matched) are ignored.
func (inv *Inventory) AddFlow(client netip.Addr, cats []rules.Category, t Traffic) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	h := inv.hosts[client.Unmap()]
	if h == nil {
		return
	}
	t.Flows = 1
	h.Traffic.add(t)
	for _, c := range cats {
		if cat := h.Categories[c]; cat != nil {
			cat.Traffic.add(t)
		}
	}
	if inv.cfg.Persist {
		d := inv.delta(h)
		d.Traffic.add(t)
		for _, c := range cats {
			dc := d.Categories[c]
			if dc == nil {
				dc = &Category{}
				d.Categories[c] = dc
			}
			dc.Traffic.add(t)
		}
	}
}

// LearnHostname remembers the name DHCP gave the host at ip (and mac,
// when known) and names the host if it is inventoried and unnamed. The
// name was escaped by the extractor.
func (inv *Inventory) LearnHostname(ip netip.Addr, mac, name string) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	ip = ip.Unmap()
	if ip.IsValid() && (len(inv.dhcpByIP) < maxDHCPNames || inv.dhcpByIP[ip] != "") {
		inv.dhcpByIP[ip] = name
	}
	if mac != "" && (len(inv.dhcpByMAC) < maxDHCPNames || inv.dhcpByMAC[mac] != "") {
		inv.dhcpByMAC[mac] = name
	}
	name1 := func(h *Host) {
		if h != nil && h.Hostname == "" {
			h.Hostname = name
			if inv.cfg.Persist {
				inv.delta(h)
			}
		}
	}
	name1(inv.hosts[ip])
	if mac == "" {
		return
	}
	// A DHCPDISCOVER names a MAC before it has an address: name the hosts
	// already seen with it. Rare (DHCP), so a walk is fine.
	for _, h := range inv.hosts {
		if h.MAC == mac {
			name1(h)
		}
	}
}

// Deadline returns the removal deadline of an inventoried host (zero:
// none or unknown host).
func (inv *Inventory) Deadline(a netip.Addr) time.Time {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if h := inv.hosts[a.Unmap()]; h != nil {
		return h.Deadline
	}
	return time.Time{}
}

// Hosts returns copies of the inventoried hosts, ordered by address.
func (inv *Inventory) Hosts() []Host {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	out := make([]Host, 0, len(inv.hosts))
	for _, h := range inv.hosts {
		c := *h
		c.Names = slices.Clone(h.Names)
		c.Rules = slices.Clone(h.Rules)
		c.Profiles = slices.Clone(h.Profiles)
		c.Categories = make(map[rules.Category]*Category, len(h.Categories))
		for k, v := range h.Categories {
			vc := *v
			c.Categories[k] = &vc
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Host) int { return a.IP.Compare(b.IP) })
	return out
}

// Len returns the number of hosts.
func (inv *Inventory) Len() int {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return len(inv.hosts)
}

// Stats returns the counters.
func (inv *Inventory) Stats() Stats {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.stats
}

// SortedCategories returns a host's categories in name order.
func (h *Host) SortedCategories() []rules.Category {
	out := make([]rules.Category, 0, len(h.Categories))
	for k := range h.Categories {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
