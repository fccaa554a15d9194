module github.com/hashicorp/go-secure-stdlib/strutil

go 1.16

require github.com/ryanuber/go-glob v1.0.0
