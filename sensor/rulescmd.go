package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/extract"
)

func rulesCheckCmd(a *args, stdout io.Writer) error {
	set, err := rules.Load(a.ruleFiles, true)
	if err != nil {
		return usageError{err}
	}
	fmt.Fprintf(stdout, "ok: %d profiles, %d rules\n", len(set.Profiles()), len(set.Rules()))
	return nil
}

func rulesListCmd(a *args, stdout io.Writer) error {
	set, err := loadRules(a)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tRULE\tCATEGORY\tSEVERITY\tCONFIDENCE\tNAME")
	for _, r := range set.Rules() {
		prof := ""
		if r.Profile != nil {
			prof = r.Profile.ID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", prof, r.ID, r.Category, r.Severity, r.Confidence, r.Name)
	}
	return tw.Flush()
}

// testHit is one hit in `rules test` output (contract in DESIGN.md).
type testHit struct {
	Rule       string `json:"rule"`
	Profile    string `json:"profile"`
	Category   string `json:"category"`
	Severity   string `json:"severity"`
	Confidence string `json:"confidence"`
	Reason     string `json:"reason"`
}

type testResult struct {
	Input string    `json:"input"`
	Hits  []testHit `json:"hits"`
}

func rulesTestCmd(a *args, stdout io.Writer) error {
	set, err := loadRules(a)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, in := range a.testInputs {
		var hits []rules.Hit
		input := in
		if ip, err := netip.ParseAddr(in); err == nil {
			input = ip.Unmap().String()
			hits = set.MatchAddr(ip.Unmap(), nil)
		} else {
			input = string(extract.AppendName(nil, []byte(in)))
			hits = set.MatchName(input, nil)
		}
		res := testResult{Input: input, Hits: []testHit{}}
		for _, h := range hits {
			th := testHit{Rule: h.Rule.ID, Category: string(h.Rule.Category), Severity: h.Rule.Severity.String(), Confidence: h.Rule.Confidence, Reason: h.Reason()}
			if h.Rule.Profile != nil {
				th.Profile = h.Rule.Profile.ID
			}
			res.Hits = append(res.Hits, th)
		}
		if a.testJSON {
			if err := enc.Encode(res); err != nil {
				return err
			}
			continue
		}
		if len(res.Hits) == 0 {
			fmt.Fprintf(stdout, "%s: no match\n", res.Input)
		}
		for _, h := range res.Hits {
			fmt.Fprintf(stdout, "%s: %s/%s (%s, %s): %s\n", res.Input, h.Profile, h.Rule, h.Category, h.Severity, h.Reason)
		}
	}
	return nil
}
