// Command gen writes the phonehome(1) manual page: the roff that kingpin
// prints for `phonehome --help-man` (every command and flag, so the page
// cannot drift from the binary), made clean for groff -ww and man-db
// (a NAME line with its description, titled subsections, non-ASCII
// characters and minus signs escaped), followed by the hand-written
// sections below (files, signals, exit status, see also).
//
//	go run ./deploy/man/gen -bin bin/phonehome -o deploy/man/phonehome.1
//
// `make man` regenerates the committed deploy/man/phonehome.1 (a test
// fails when it differs); `make package` generates the packaged page with
// the version in its title line.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strings"
)

const tail = `.SH "FILES"
.TP
\fI/etc/default/phonehome\fR
\fBPHONEHOME_ARGS\fR, the arguments of \fBphonehome run\fR for \%phonehome.service.
.TP
\fI/lib/systemd/system/phonehome.service\fR
The systemd unit: runs as user \fBphonehome\fR with CAP_NET_RAW and CAP_NET_ADMIN only.
.TP
\fI/var/lib/phonehome/phonehome.db\fR
The SQLite inventory of the service (\fB\-\-storage.path\fR).
.TP
\fI/var/log/phonehome/alerts.json\fR
Alert events of the service, ECS JSON lines (its standard output, appended by systemd; rotated daily).
.TP
\fI/etc/logrotate.d/phonehome\fR
Rotation of the alert files (copytruncate).
.SH "SIGNALS"
.TP
\fBSIGHUP\fR
Reload the rules and the GeoIP databases and reopen the files of \fBecs:\fR and \fBeve:\fR outputs (as \fBPOST /\-/reload\fR does); on error the old rules and databases stay in force.
.TP
\fBSIGINT\fR, \fBSIGTERM\fR
Stop: read what the kernel still holds, flush the inventory, print the summary, exit 0.
.SH "EXIT STATUS"
.TP
\fB0\fR
Success, including a live run stopped by SIGINT or SIGTERM.
.TP
\fB1\fR
Failure at run time, e.g. every capture interface went away.
.TP
\fB2\fR
Usage error: unknown flag, bad filter, bad web configuration.
.SH "EXAMPLES"
.nf
phonehome run \-r capture.pcap
phonehome run \-i eth1 \-\-workers 2 \-\-removal.deadline 2024\-09\-29
phonehome report \-\-storage.path /var/lib/phonehome/phonehome.db
systemctl reload phonehome
.fi
.SH "SEE ALSO"
.BR tcpdump (8),
.BR systemctl (1),
.BR logrotate (8),
.BR ethtool (8)
.PP
https://github.com/phonehome-sensor/phonehome
`

func main() {
	bin := flag.String("bin", "bin/phonehome", "the phonehome binary")
	out := flag.String("o", "", "output file (default stdout)")
	version := flag.String("version", "", "version in the title line (none when empty)")
	flag.Parse()
	raw, err := exec.Command(*bin, "--help-man").Output()
	if err != nil {
		log.Fatalf("%s --help-man: %v", *bin, err)
	}
	page, err := convert(raw, *version)
	if err != nil {
		log.Fatal(err)
	}
	if *out == "" {
		os.Stdout.Write(page)
		return
	}
	if err := os.WriteFile(*out, page, 0o644); err != nil {
		log.Fatal(err)
	}
}

// convert turns kingpin's --help-man output into the page.
func convert(raw []byte, version string) ([]byte, error) {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		// The sensor prints its usage after kingpin's page: stop there.
		if strings.HasPrefix(sc.Text(), "usage: ") {
			break
		}
		lines = append(lines, sc.Text())
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], ".TH phonehome 1") {
		return nil, fmt.Errorf("not kingpin's --help-man output: %q", firstLine(lines))
	}
	var b strings.Builder
	source := "phonehome"
	if version != "" {
		source += " " + version
	}
	fmt.Fprintf(&b, ".TH PHONEHOME 1 \"\" %q \"User Commands\"\n", source)
	for i := 1; i < len(lines); i++ {
		l := lines[i]
		switch {
		case l == "":
			// Blank lines are a paragraph break in roff; the macros
			// already separate paragraphs.
		case l == `.SH "NAME"`:
			b.WriteString(l + "\n")
			b.WriteString(`phonehome \- passive network sensor: finds hosts that still phone home to a banned vendor` + "\n")
			i++ // kingpin's bare "phonehome"
		case l == ".SS" && i+1 < len(lines):
			// kingpin writes the subsection title on the next line.
			title := strings.TrimSuffix(strings.TrimPrefix(lines[i+1], `\fB`), `\fR`)
			fmt.Fprintf(&b, ".SS \"%s\"\n", text(title))
			i++
		case strings.HasPrefix(l, "."):
			b.WriteString(l + "\n")
		default:
			b.WriteString(text(l) + "\n")
		}
	}
	b.WriteString(tail)
	return []byte(b.String()), nil
}

// text escapes a text line of help: backslashes other than kingpin's font
// changes, hyphens as minus signs (flags must paste as ASCII), non-ASCII
// characters as groff's \[uXXXX], a leading control character.
func text(l string) string {
	var b strings.Builder
	for i := 0; i < len(l); {
		if strings.HasPrefix(l[i:], `\fB`) || strings.HasPrefix(l[i:], `\fR`) || strings.HasPrefix(l[i:], `\fI`) {
			b.WriteString(l[i : i+3])
			i += 3
			continue
		}
		r := []rune(l[i:])[0]
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r > 0x7f:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
		i += len(string(r))
	}
	s := b.String()
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func firstLine(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[0]
}
