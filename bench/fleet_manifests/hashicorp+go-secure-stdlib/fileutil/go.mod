module github.com/hashicorp/go-secure-stdlib/fileutil

go 1.16
