//go:build unix

package geo

import (
	"io/fs"
	"syscall"
)

// fileID identifies the content of a file for change detection: a file
// replaced by rename has another inode, one rewritten in place another size
// or modification time. The zero value means "could not stat".
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func idOf(fi fs.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}
