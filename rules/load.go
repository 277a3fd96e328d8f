package rules

import (
	"embed"
	"errors"
	"io/fs"
	"os"
	"path"
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
// two files, is an error.
func Load(paths []string, builtin bool) (*Set, error) {
	var files []ParsedFile
	if builtin {
		b, err := builtinFiles()
		if err != nil {
			return nil, err
		}
		files = append(files, b...)
	}
	var errs []error
	for _, p := range paths {
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
