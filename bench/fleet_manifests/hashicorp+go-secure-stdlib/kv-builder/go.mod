module github.com/hashicorp/go-secure-stdlib/kv-builder

go 1.16

require github.com/mitchellh/mapstructure v1.4.1
