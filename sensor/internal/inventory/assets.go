package inventory

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Deadlines gives hosts their removal deadline: the most specific subnet
// deadline containing the host, else the global one. An asset file entry
// overrides both.
type Deadlines struct {
	Global  time.Time
	subnets []SubnetDeadline // most specific first
}

// SubnetDeadline is the removal deadline of one network.
type SubnetDeadline struct {
	Prefix   netip.Prefix
	Deadline time.Time
}

// NewDeadlines returns the deadlines; global may be zero (none).
func NewDeadlines(global time.Time, subnets []SubnetDeadline) *Deadlines {
	s := slices.Clone(subnets)
	slices.SortStableFunc(s, func(a, b SubnetDeadline) int { return b.Prefix.Bits() - a.Prefix.Bits() })
	return &Deadlines{Global: global, subnets: s}
}

// For returns the deadline of a (zero: none).
func (d *Deadlines) For(a netip.Addr) time.Time {
	a = a.Unmap()
	for _, s := range d.subnets {
		if s.Prefix.Contains(a) {
			return s.Deadline
		}
	}
	return d.Global
}

// ParseSubnetDeadline reads "CIDR=YYYY-MM-DD".
func ParseSubnetDeadline(s string) (SubnetDeadline, error) {
	cidr, date, ok := strings.Cut(s, "=")
	if !ok {
		return SubnetDeadline{}, fmt.Errorf("%q: want CIDR=YYYY-MM-DD", s)
	}
	p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil {
		return SubnetDeadline{}, fmt.Errorf("%q: %w", s, err)
	}
	d, err := ParseDate(strings.TrimSpace(date))
	if err != nil {
		return SubnetDeadline{}, fmt.Errorf("%q: %w", s, err)
	}
	return SubnetDeadline{Prefix: p.Masked(), Deadline: d}, nil
}

// ParseDate reads a removal date: YYYY-MM-DD (midnight UTC) or RFC 3339.
func ParseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad date %q: want YYYY-MM-DD or RFC 3339", s)
	}
	return t.UTC(), nil
}

// Asset is what the asset file says of one host.
type Asset struct {
	Hostname, Owner, Site string
	Deadline              time.Time // zero: the subnet's or global one
}

// Assets are the hosts of an asset file, by address and by MAC.
type Assets struct {
	byIP  map[netip.Addr]Asset
	byMAC map[string]Asset
}

// Len is the number of entries.
func (a *Assets) Len() int { return len(a.byIP) + len(a.byMAC) }

// Lookup finds a host by address, else by MAC (as the sensor formats it).
func (a *Assets) Lookup(ip netip.Addr, mac string) (Asset, bool) {
	if as, ok := a.byIP[ip.Unmap()]; ok {
		return as, true
	}
	if mac != "" {
		as, ok := a.byMAC[mac]
		return as, ok
	}
	return Asset{}, false
}

// LoadAssets reads an asset CSV file: one host per line,
// `ip|mac,hostname,owner,site,removal_date`; a first line starting with
// "ip" or "mac" is a header; empty lines and lines starting with '#' are
// skipped; owner, site and removal_date may be empty. Errors name the
// file and line.
func LoadAssets(path string) (*Assets, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAssets(path, f)
}

// ReadAssets is LoadAssets over a reader; name is used in errors.
func ReadAssets(name string, r io.Reader) (*Assets, error) {
	// Spreadsheets save "CSV UTF-8" with a byte-order mark: skip it.
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	a := &Assets{byIP: map[netip.Addr]Asset{}, byMAC: map[string]Asset{}}
	first := true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s:%d:%d: %v", name, pe.Line, pe.Column, pe.Err)
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		bad := func(format string, v ...any) error {
			return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, v...))
		}
		if first {
			first = false
			if k := strings.ToLower(strings.TrimSpace(rec[0])); k == "ip" || k == "mac" || k == "ip|mac" {
				continue
			}
		}
		if len(rec) < 2 || len(rec) > 5 {
			return nil, bad("%d fields: want ip|mac,hostname[,owner[,site[,removal_date]]]", len(rec))
		}
		for len(rec) < 5 {
			rec = append(rec, "")
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		for i, field := range []string{"hostname", "owner", "site"} {
			// A line break or an escape in a name is a mistake in the
			// file, and would break every report line it is printed on.
			if j := strings.IndexFunc(rec[i+1], unicode.IsControl); j >= 0 {
				return nil, bad("%s: control character %q", field, rec[i+1][j:j+1])
			}
		}
		as := Asset{Hostname: rec[1], Owner: rec[2], Site: rec[3]}
		if rec[4] != "" {
			if as.Deadline, err = ParseDate(rec[4]); err != nil {
				return nil, bad("removal_date: %v", err)
			}
		}
		if ip, err := netip.ParseAddr(rec[0]); err == nil {
			if _, dup := a.byIP[ip.Unmap()]; dup {
				return nil, bad("%s listed twice", ip)
			}
			a.byIP[ip.Unmap()] = as
			continue
		}
		hw, err := net.ParseMAC(rec[0])
		if err != nil || len(hw) != 6 {
			return nil, bad("%q is neither an IP address nor a MAC address", rec[0])
		}
		mac := strings.ToUpper(strings.ReplaceAll(hw.String(), ":", "-"))
		if _, dup := a.byMAC[mac]; dup {
			return nil, bad("%s listed twice", mac)
		}
		a.byMAC[mac] = as
	}
	return a, nil
}
