package capture

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"testing"
)

func TestParseRunAs(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	r, err := ParseRunAs("nobody")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(r.UID) != nobody.Uid || fmt.Sprint(r.GID) != nobody.Gid {
		t.Errorf("nobody: %+v, want uid %s gid %s", r, nobody.Uid, nobody.Gid)
	}
	found := false
	for _, g := range r.Groups {
		found = found || fmt.Sprint(g) == nobody.Gid
	}
	if !found {
		t.Errorf("groups %v lack the primary group", r.Groups)
	}
	if r, err := ParseRunAs(nobody.Uid + ":4321"); err != nil || r.GID != 4321 {
		t.Errorf("uid:gid: %+v %v", r, err)
	}
	if r, err := ParseRunAs("54321:54321"); err != nil || r.UID != 54321 || r.GID != 54321 || len(r.Groups) != 1 {
		t.Errorf("ids outside the password database: %+v %v", r, err)
	}
	for _, tc := range []struct{ spec, want string }{
		{"", "no user"},
		{"root", "is root"},
		{"0:0", "is root"},
		{"nobody:", "no group"},
		{":nogroup", "no user"},
		{"no-such-user-here", "no such user"},
		{"nobody:no-such-group-here", "no such group"},
		{"54321", "give its group too"},
		{"-5:1", "negative user id"},
	} {
		_, err := ParseRunAs(tc.spec)
		if err == nil || !errors.Is(err, ErrRunAs) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.spec, err, tc.want)
		}
	}
}

// TestRunAsDrop runs Drop in a child process (it cannot be undone): as
// root, the child becomes nobody and cannot come back; as nobody it has
// nothing to do; as anyone else, Drop refuses.
func TestRunAsDrop(t *testing.T) {
	if os.Getenv("PHONEHOME_TEST_DROP") == "1" {
		r, err := ParseRunAs("nobody")
		if err != nil {
			fmt.Println("parse:", err)
			os.Exit(3)
		}
		if err := r.Drop(); err != nil {
			fmt.Println("drop:", err)
			os.Exit(4)
		}
		fmt.Printf("uid=%d euid=%d gid=%d\n", os.Getuid(), os.Geteuid(), os.Getgid())
		os.Exit(0)
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody here")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunAsDrop$")
	cmd.Env = append(os.Environ(), "PHONEHOME_TEST_DROP=1")
	out, err := cmd.CombinedOutput()
	r, _ := ParseRunAs("nobody")
	if os.Geteuid() != 0 && os.Geteuid() != r.UID {
		if err == nil || !strings.Contains(string(out), "switching user needs root") {
			t.Errorf("as uid %d: %v %s", os.Geteuid(), err, out)
		}
		return
	}
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := fmt.Sprintf("uid=%d euid=%d gid=%d", r.UID, r.UID, r.GID); !strings.Contains(string(out), want) {
		t.Errorf("child says %q, want %q", out, want)
	}
}
