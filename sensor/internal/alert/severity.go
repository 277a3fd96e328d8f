package alert

import "github.com/phonehome-sensor/phonehome/rules"

// severityScores are the ECS event.severity values of the rule
// severities, on the 0–100 scale Elastic detection rules use.
var severityScores = [...]int{rules.SeverityInfo: 1, rules.SeverityLow: 21, rules.SeverityMedium: 47, rules.SeverityHigh: 73, rules.SeverityCritical: 99}

// SeverityScore maps a rule severity to ECS event.severity (0 for an
// invalid one).
func SeverityScore(s rules.Severity) int {
	if !s.Valid() {
		return 0
	}
	return severityScores[s]
}

// ScoreSeverity maps an ECS event.severity back to the rule severity it
// stands for: the nearest one, scores in between split at the midpoints.
// exact tells whether score is one SeverityScore gives.
func ScoreSeverity(score int) (s rules.Severity, exact bool) {
	s = rules.SeverityInfo
	for c := rules.SeverityLow; c <= rules.SeverityCritical; c++ {
		if 2*score >= severityScores[c-1]+severityScores[c] {
			s = c
		}
	}
	return s, score == severityScores[s]
}
