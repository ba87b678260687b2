module github.com/netprov/netprov

go 1.26.8

require (
	github.com/songgao/water v0.0.0-20200317203138-2b4b6d7c09d8 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
