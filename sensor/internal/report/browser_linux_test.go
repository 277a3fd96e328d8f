package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/testsvc"
)

// TestHTMLInBrowser renders the report in a real browser (Debian's
// chromium, headless): the page must load without a single console
// message (no CSP violation, no script error), its script must run and
// sort the table from the #sort address, the DOM must hold every row and
// the timeline, and the screenshot must show something. Set REPORT_PNG to
// a path to keep the screenshot.
func TestHTMLInBrowser(t *testing.T) {
	bin := testsvc.Program(t, "chromium", "chromium not found: install Debian's chromium (make deps) to run the browser render test")
	if testing.Short() {
		t.Skip("browser render test skipped in -short mode")
	}
	start := time.Now()
	dir := t.TempDir()
	r := testReport(t, Options{})
	var page bytes.Buffer
	if err := r.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	url := "file://" + file
	shot := filepath.Join(dir, "report.png")

	// Two browsers at once: one takes the screenshot, the other dumps
	// the DOM after the script sorted the table by host address.
	var wg sync.WaitGroup
	var dom, shotLog, domLog string
	var shotErr, domErr error
	wg.Go(func() {
		_, shotLog, shotErr = runChromium(bin, filepath.Join(dir, "profile-shot"), "--screenshot="+shot, "--window-size=1280,1600", url)
	})
	wg.Go(func() {
		dom, domLog, domErr = runChromium(bin, filepath.Join(dir, "profile-dom"), "--dump-dom", url+"#sort=host,asc")
	})
	wg.Wait()
	for _, run := range []struct {
		name string
		err  error
		log  string
	}{{"screenshot", shotErr, shotLog}, {"dump-dom", domErr, domLog}} {
		if run.err != nil {
			t.Fatalf("chromium %s: %v\n%s", run.name, run.err, run.log)
		}
		for _, line := range strings.Split(run.log, "\n") {
			if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") || strings.Contains(line, "Refused to") ||
				strings.Contains(line, "Content Security Policy") {
				t.Errorf("chromium %s: console message: %s", run.name, line)
			}
		}
	}

	// The DOM: the script ran, every host is a row, sorted by address as
	// #sort=host,asc asked, and the timeline is there.
	if !regexp.MustCompile(`<html[^>]* data-js="ready"`).MatchString(dom) {
		t.Error("dom: the page's script did not run (no data-js=ready)")
	}
	rows := regexp.MustCompile(`<tr data-i="(\d+)"`).FindAllStringSubmatch(dom, -1)
	if len(rows) != len(r.Hosts) {
		t.Errorf("dom: %d host rows, want %d", len(rows), len(r.Hosts))
	}
	var got, want []string
	for _, m := range rows {
		i, _ := strconv.Atoi(m[1])
		got = append(got, r.Hosts[i].IP.String())
	}
	byIP := slices.Clone(r.Hosts)
	slices.SortFunc(byIP, func(a, b Row) int { return a.IP.Compare(b.IP) })
	for _, h := range byIP {
		want = append(want, h.IP.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("dom: rows after #sort=host,asc: %v, want %v", got, want)
	}
	if !regexp.MustCompile(`<th data-key="host" data-type="str" aria-sort="ascending">`).MatchString(dom) {
		t.Error("dom: host column not marked aria-sort=ascending")
	}
	if !strings.Contains(dom, `<svg id="timeline"`) || strings.Count(dom, "<rect ") < 10 {
		t.Error("dom: no timeline SVG with bars")
	}
	if strings.Contains(dom, "<script>alert(1)</script>") {
		t.Error("dom: the hostile hostname became markup")
	}

	// The screenshot: the window's size, and not a blank page.
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 1600 {
		t.Errorf("screenshot is %dx%d, want 1280x1600", b.Dx(), b.Dy())
	}
	if n := colours(img, 64); n < 16 {
		t.Errorf("screenshot has %d colours: blank or broken page", n)
	}
	if p := os.Getenv("REPORT_PNG"); p != "" {
		b, err := os.ReadFile(shot)
		if err == nil {
			err = os.WriteFile(p, b, 0o644)
		}
		if err != nil {
			t.Errorf("REPORT_PNG: %v", err)
		}
	}
	t.Logf("chromium render test took %s", time.Since(start).Round(time.Millisecond))
}

// runChromium runs headless chromium with its own profile and a timeout,
// and returns its stdout and stderr.
func runChromium(bin, profile string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	// Its own process group, so a timeout kills chromium's helpers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return out.String(), errb.String(), err
}

// colours counts the distinct colours of img, stopping at limit.
func colours(img image.Image, limit int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}
