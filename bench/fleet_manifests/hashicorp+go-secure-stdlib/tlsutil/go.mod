module github.com/hashicorp/go-secure-stdlib/tlsutil

go 1.20

require (
	github.com/hashicorp/go-secure-stdlib/parseutil v0.1.8
	github.com/hashicorp/go-secure-stdlib/strutil v0.1.2
)

require (
	github.com/hashicorp/go-sockaddr v1.0.6 // indirect
	github.com/mitchellh/mapstructure v1.5.0 // indirect
	github.com/ryanuber/go-glob v1.0.0 // indirect
)
