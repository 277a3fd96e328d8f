package alert

import (
	"testing"

	"github.com/phonehome-sensor/phonehome/rules"
)

func TestSeverity(t *testing.T) {
	for s := rules.SeverityInfo; s <= rules.SeverityCritical; s++ {
		if got, exact := ScoreSeverity(SeverityScore(s)); got != s || !exact {
			t.Errorf("%s: score %d maps back to %s (exact %v)", s, SeverityScore(s), got, exact)
		}
	}
	for _, tc := range []struct {
		score int
		want  rules.Severity
	}{{0, rules.SeverityInfo}, {10, rules.SeverityInfo}, {11, rules.SeverityLow}, {34, rules.SeverityMedium}, {59, rules.SeverityMedium},
		{60, rules.SeverityHigh}, {85, rules.SeverityHigh}, {86, rules.SeverityCritical}, {100, rules.SeverityCritical}} {
		if got, exact := ScoreSeverity(tc.score); got != tc.want || exact {
			t.Errorf("ScoreSeverity(%d) = %s, %v; want %s, not exact", tc.score, got, exact, tc.want)
		}
	}
	if SeverityScore(0) != 0 {
		t.Error("invalid severity scored")
	}
}
