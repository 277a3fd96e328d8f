package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"go.yaml.in/yaml/v3"
)

// --config.file FILE holds flag settings as YAML: flag names without the
// dashes as keys, a list for a repeatable flag, true/false for a switch.
//
//	workers: 2
//	home-net: [10.0.0.0/8]
//	output:
//	  - ecs:/var/log/phonehome/alerts.json
//	  - syslog+tcp://siem.example:514
//	storage.path: /var/lib/phonehome/phonehome.db
//	capture.promisc: false
//
// The settings become flags of the command placed before the command
// line's own; a flag given on the command line replaces the file's value
// (a repeatable one, all of them). Unknown keys, lists for single-valued
// flags and nested maps are errors that name the file, line and column.
// The file is read once, at start: SIGHUP reloads rules, GeoIP databases
// and output files, not flags.

// expandConfig returns argv with the settings of its --config.file
// inserted, and argv itself when there is none.
func expandConfig(app *kingpin.Application, argv []string) ([]string, error) {
	path, rest, found, err := takeConfigFlag(argv)
	if err != nil || !found {
		return argv, err
	}
	// The command: the first word that names one.
	model := app.Model()
	var cmd *kingpin.CmdModel
	at := -1
	for i, w := range rest {
		if strings.HasPrefix(w, "-") {
			continue
		}
		for _, c := range model.Commands {
			if c.Name == w {
				cmd, at = c, i
			}
		}
		break
	}
	if cmd == nil {
		return nil, fmt.Errorf("--config.file: give a command (run, inspect, report) before or after it")
	}
	flags := map[string]*kingpin.FlagModel{}
	for _, f := range append(slices.Clone(model.Flags), cmd.Flags...) {
		flags[f.Name] = f
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config.file: %w", err)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		var line int
		if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
			_, msg, _ = strings.Cut(msg, ": ")
			return nil, fmt.Errorf("%s:%d: %s", path, line, msg)
		}
		return nil, fmt.Errorf("%s: %s", path, msg)
	}
	if len(doc.Content) == 0 {
		return argv[:len(argv):len(argv)], nil // empty file: nothing set
	}
	root := doc.Content[0]
	at0 := func(n *yaml.Node, format string, v ...any) error {
		return fmt.Errorf("%s:%d:%d: %s", path, n.Line, n.Column, fmt.Sprintf(format, v...))
	}
	if root.Kind != yaml.MappingNode {
		return nil, at0(root, "want a mapping of flag names to values")
	}
	onCommandLine := map[string]bool{}
	for _, w := range rest[at+1:] {
		if name, ok := strings.CutPrefix(w, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			onCommandLine[strings.TrimPrefix(name, "no-")] = true
		} else if len(w) == 2 && w[0] == '-' {
			for _, f := range cmd.Flags {
				if f.Short == rune(w[1]) {
					onCommandLine[f.Name] = true
				}
			}
		}
	}
	var set []string
	seen := map[string]int{}
	for i := 0; i < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		if line, dup := seen[name]; dup {
			return nil, at0(k, "%q set twice (first at line %d)", name, line)
		}
		seen[name] = k.Line
		f := flags[name]
		switch {
		case name == "config.file":
			return nil, at0(k, "config.file cannot name another file")
		case f == nil || f.Hidden || name == "help":
			msg := fmt.Sprintf("unknown setting %q for phonehome %s", name, cmd.Name)
			if hint := nearestFlag(name, flags); hint != "" {
				msg += fmt.Sprintf("; did you mean %q?", hint)
			}
			return nil, at0(k, "%s", msg)
		}
		if onCommandLine[name] {
			continue
		}
		var values []*yaml.Node
		switch v.Kind {
		case yaml.ScalarNode:
			values = []*yaml.Node{v}
		case yaml.SequenceNode:
			if !cumulative(f) {
				return nil, at0(v, "%q takes one value, not a list", name)
			}
			values = v.Content
		default:
			return nil, at0(v, "%q: want a value or a list of values", name)
		}
		for _, val := range values {
			if val.Kind != yaml.ScalarNode {
				return nil, at0(val, "%q: want a plain value", name)
			}
			if f.IsBoolFlag() {
				var b bool
				if err := val.Decode(&b); err != nil {
					return nil, at0(val, "%q is a switch: want true or false, not %q", name, val.Value)
				}
				if b {
					set = append(set, "--"+name)
				} else {
					set = append(set, "--no-"+name)
				}
				continue
			}
			if !cumulative(f) {
				// Checked here, where the position is known; the parse
				// that follows sets the same value again.
				if err := f.Value.Set(val.Value); err != nil {
					return nil, at0(val, "%q: bad value %q: %v", name, val.Value, err)
				}
			}
			set = append(set, "--"+name+"="+val.Value)
		}
	}
	out := make([]string, 0, len(rest)+len(set))
	out = append(out, rest[:at+1]...)
	out = append(out, set...)
	return append(out, rest[at+1:]...), nil
}

// takeConfigFlag removes --config.file FILE (or --config.file=FILE) from
// argv.
func takeConfigFlag(argv []string) (path string, rest []string, found bool, err error) {
	for i := 0; i < len(argv); i++ {
		w := argv[i]
		if w == "--" {
			break
		}
		if v, ok := strings.CutPrefix(w, "--config.file="); ok {
			path, found = v, true
			rest = append(append(rest, argv[:i]...), argv[i+1:]...)
			break
		}
		if w == "--config.file" {
			if i+1 >= len(argv) {
				return "", nil, false, fmt.Errorf("--config.file: expected a file")
			}
			path, found = argv[i+1], true
			rest = append(append(rest, argv[:i]...), argv[i+2:]...)
			break
		}
	}
	if found && path == "" {
		return "", nil, false, fmt.Errorf("--config.file: expected a file")
	}
	return path, rest, found, nil
}

// nearestFlag suggests the flag closest to a misspelt name.
func nearestFlag(name string, flags map[string]*kingpin.FlagModel) string {
	best, bestD := "", 4
	for f := range flags {
		if d := editDistance(name, f); d < bestD || d == bestD && f < best {
			best, bestD = f, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// cumulative tells whether a flag may be given more than once.
func cumulative(f *kingpin.FlagModel) bool {
	r, ok := f.Value.(interface{ IsCumulative() bool })
	return ok && r.IsCumulative()
}
