package report

import (
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

func TestClassify(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	d := time.Date(2024, 9, 29, 0, 0, 0, 0, time.UTC)
	quiet := 14 * 24 * time.Hour
	future := now.Add(30 * 24 * time.Hour)
	day := 24 * time.Hour
	tests := []struct {
		name              string
		deadline          time.Time
		first, last       time.Time
		quiet             time.Duration
		want              Status
		wantAfterDeadline bool
	}{
		{"no deadline, active", time.Time{}, now.Add(-100 * day), now.Add(-time.Hour), quiet, NoDeadline, false},
		{"no deadline, silent", time.Time{}, now.Add(-100 * day), now.Add(-90 * day), quiet, NoDeadline, false},
		{"seen before and after the deadline, active", d, d.Add(-30 * day), now.Add(-time.Hour), quiet, NeverRemoved, true},
		{"first seen after the deadline, active", d, d.Add(10 * day), now.Add(-time.Hour), quiet, StillPhoningHome, true},
		{"first contact exactly at the deadline", d, d, now.Add(-time.Hour), quiet, StillPhoningHome, true},
		{"first contact just before the deadline", d, d.Add(-time.Nanosecond), now.Add(-time.Hour), quiet, NeverRemoved, true},
		{"stopped before the deadline", d, d.Add(-60 * day), d.Add(-5 * day), quiet, Removed, false},
		{"last contact just before the deadline", d, d.Add(-60 * day), d.Add(-time.Nanosecond), quiet, Removed, false},
		{"stopped after the deadline, silent a quiet period", d, d.Add(-60 * day), now.Add(-quiet), quiet, Removed, true},
		{"quiet period not quite over", d, d.Add(-60 * day), now.Add(-quiet + time.Nanosecond), quiet, NeverRemoved, true},
		{"quiet period not over, first seen after", d, d.Add(day), now.Add(-quiet + time.Second), quiet, StillPhoningHome, true},
		{"zero quiet is the default 14 days", d, d.Add(-day), now.Add(-13 * day), 0, NeverRemoved, true},
		{"zero quiet is the default 14 days, silent", d, d.Add(-day), now.Add(-14 * day), 0, Removed, true},
		{"shorter quiet period", d, d.Add(-day), now.Add(-2 * day), 24 * time.Hour, Removed, true},
		{"deadline just passed, last contact before it, within quiet", now.Add(-3 * day), now.Add(-40 * day), now.Add(-5 * day), quiet, Removed, false},
		{"deadline exactly now, contact at it", now, now.Add(-40 * day), now, quiet, NeverRemoved, true},
		{"deadline ahead, active", future, now.Add(-40 * day), now.Add(-time.Hour), quiet, StillPhoningHome, false},
		{"deadline ahead, silent", future, now.Add(-40 * day), now.Add(-20 * day), quiet, Removed, false},
		{"last contact in the future (clock skew)", d, d.Add(-day), now.Add(time.Hour), quiet, NeverRemoved, true},
		{"never seen at all", d, time.Time{}, time.Time{}, quiet, Removed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &inventory.Host{Deadline: tt.deadline, FirstSeen: tt.first, LastSeen: tt.last}
			if got := Classify(h, now, tt.quiet); got != tt.want {
				t.Errorf("Classify = %s, want %s", got, tt.want)
			}
			if got := afterDeadline(h); got != tt.wantAfterDeadline {
				t.Errorf("afterDeadline = %v, want %v", got, tt.wantAfterDeadline)
			}
			if !tt.want.Valid() {
				t.Errorf("%q is not Valid", tt.want)
			}
		})
	}
	if Status("gone").Valid() {
		t.Error(`Status("gone").Valid()`)
	}
}

func TestTerminal(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"plain.example.com", 0, "plain.example.com"},
		{"a\x1b[31mred\nline\tx\x7f", 0, `a\x1b[31mred\x0aline\x09x\x7f`},
		{"bad\xffutf8", 0, `bad\xffutf8`},
		{"bidi\u202eevil", 0, `bidi\xe2\x80\xaeevil`},
		{"c1\u009bcsi", 0, `c1\xc2\x9bcsi`},
		{"büro-pc", 0, "büro-pc"},
		{"0123456789", 10, "0123456789"},
		{"0123456789a", 10, "012345678…"},
		{"01234567\x1b", 10, "01234567…"}, // an escape is never split
		{"0123456\x1b", 10, `0123456…`},
		{"012345\x1b", 10, `012345\x1b`},
		{"", 5, ""},
	}
	for _, tt := range tests {
		if got := terminal(tt.in, tt.limit); got != tt.want {
			t.Errorf("terminal(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
		}
	}
}

func TestCSVCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		{"+1", "'+1"},
		{"-1+1", "'-1+1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", `\x09=1`},
		{"\r=1", `\x0d=1`},
		{"a=b", "a=b"},
		{"x\x1b[31my\nz", `x\x1b[31my\x0az`},
		{"", ""},
	}
	for _, tt := range tests {
		if got := csvCell(tt.in); got != tt.want {
			t.Errorf("csvCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
