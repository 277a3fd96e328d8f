package main

import (
	"os"
	"testing"
)

// TestMain: runs in tests keep no inventory file unless a test asks for
// one with --storage.path (a test must not write into the source tree).
func TestMain(m *testing.M) {
	defaultStoragePath = ""
	os.Exit(m.Run())
}
