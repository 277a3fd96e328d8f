package rules

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
)

// builtinFS holds the built-in profiles, one YAML file each.
//
//go:embed builtin/*.yaml
var builtinFS embed.FS

// builtinFiles parses the embedded profiles once; Profile.File is
// "builtin:NAME.yaml".
var builtinFiles = sync.OnceValues(func() ([]ParsedFile, error) {
	names, err := fs.Glob(builtinFS, "builtin/*.yaml")
	if err != nil {
		return nil, err
	}
	var files []ParsedFile
	var errs []error
	for _, name := range names { // fs.Glob returns names in lexical order
		data, err := builtinFS.ReadFile(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		prof, rules, err := Parse("builtin:"+path.Base(name), data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, ParsedFile{prof, rules})
	}
	return files, errors.Join(errs...)
})

var builtinSet = sync.OnceValues(func() (*Set, error) {
	files, err := builtinFiles()
	if err != nil {
		return nil, err
	}
	return Compile(files...)
})

// Builtin returns the Set of the embedded profiles (rules/builtin/*.yaml).
// The Set is built once and shared.
func Builtin() (*Set, error) { return builtinSet() }

// Load builds a Set from the built-in profiles (if builtin is true) followed
// by the profile files at paths, in order. Every problem in every file is
// reported, as in Parse; a profile id or rule id defined twice, in any
// two files, is an error. It is LoadWith(LoadOptions{Paths: paths,
// NoBuiltin: !builtin}).
func Load(paths []string, builtin bool) (*Set, error) {
	return LoadWith(LoadOptions{Paths: paths, NoBuiltin: !builtin})
}

// LoadOptions says which profiles LoadWith loads.
type LoadOptions struct {
	Paths     []string // profile files, loaded after the built-in profiles, in order
	NoBuiltin bool     // leave out every built-in profile
	// DisableProfiles lists built-in profiles to leave out, by id (such as
	// "russian-hosted"). An id that names no built-in profile is an error,
	// so that a typo does not go unnoticed, even with NoBuiltin. A file of
	// Paths may define a profile with the id of a disabled built-in one, to
	// replace it.
	DisableProfiles []string
}

// LoadWith builds a Set as Load does, leaving out the built-in profiles
// that opts disables.
func LoadWith(opts LoadOptions) (*Set, error) {
	b, err := builtinFiles()
	if err != nil {
		return nil, err
	}
	disabled := map[string]bool{}
	var errs []error
	for _, id := range opts.DisableProfiles {
		if !slices.ContainsFunc(b, func(f ParsedFile) bool { return f.Profile.ID == id }) {
			errs = append(errs, fmt.Errorf("rules: cannot disable profile %q: no such built-in profile (built-in: %s)", id, strings.Join(BuiltinProfileIDs(), ", ")))
		}
		disabled[id] = true
	}
	var files []ParsedFile
	if !opts.NoBuiltin {
		for _, f := range b {
			if !disabled[f.Profile.ID] {
				files = append(files, f)
			}
		}
	}
	for _, p := range opts.Paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err) // *fs.PathError names the file
			continue
		}
		prof, rules, err := Parse(p, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, ParsedFile{prof, rules})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return Compile(files...)
}

// BuiltinProfileIDs returns the ids of the embedded profiles, in load order
// (the file names' lexical order).
func BuiltinProfileIDs() []string {
	b, _ := builtinFiles()
	ids := make([]string, 0, len(b))
	for _, f := range b {
		ids = append(ids, f.Profile.ID)
	}
	return ids
}
