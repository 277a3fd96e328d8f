//go:build !unix

package geo

import "io/fs"

// fileID identifies the content of a file for change detection by size and
// modification time (device and inode are not available here). The zero
// value means "could not stat".
type fileID struct {
	size  int64
	mtime int64
}

func idOf(fi fs.FileInfo) fileID {
	return fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}
