// A self-signed certificate and its key, for serving HTTPS to tests only: kubectl sends a bearer token only to
// an https server (client-go reads a kubeconfig's user only for TLS transports), so a server with a token
// speaks TLS. The key is public (it is in this file): never use it for anything else, as Go's
// net/http/internal/testcert. Valid 2020–2120 for 127.0.0.1, ::1 and localhost; its own CA (kubeconfigs carry
// it as certificate-authority-data). Made with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`
// and `openssl ca -selfsign -startdate 20200101000000Z -enddate 21200101000000Z`, extensions CA:TRUE,
// keyUsage digitalSignature,keyCertSign, extendedKeyUsage serverAuth, subjectAltName as above.

export const TEST_CERT = `
-----BEGIN CERTIFICATE-----
MIIBsDCCAVagAwIBAgIBATAKBggqhkjOPQQDAjAcMRowGAYDVQQDDBFlbmktY25p
LWFwaXNlcnZlcjAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFowHDEa
MBgGA1UEAwwRZW5pLWNuaS1hcGlzZXJ2ZXIwWTATBgcqhkjOPQIBBggqhkjOPQMB
BwNCAASZZhW2d8vUICsox2gHK/enA2UlJjNTWSZLmJpYEubkSKudGF38xPuZeFM1
V2WPpCMIIA8Re+arspw6JYoeNj1Do4GGMIGDMA8GA1UdEwEB/wQFMAMBAf8wDgYD
VR0PAQH/BAQDAgKEMBMGA1UdJQQMMAoGCCsGAQUFBwMBMCwGA1UdEQQlMCOHBH8A
AAGHEAAAAAAAAAAAAAAAAAAAAAGCCWxvY2FsaG9zdDAdBgNVHQ4EFgQUWtQHluXI
rgUoz9lFYu5zpaRK7kYwCgYIKoZIzj0EAwIDSAAwRQIhAPaNbbHgcevb9RpuXpbk
ZVxmKLnyatCIjAuWA+UYSSnJAiBW+LiaJ+yVtghQBiHuIpQKfQTUUtQgpsW6lXWS
w3tlOw==
-----END CERTIFICATE-----
`.trimStart();

export const TEST_KEY = `
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgcr2SxICJNgs7Vwuk
zflgsY+d0a1OQ1rknhCL9Lz4vSWhRANCAASZZhW2d8vUICsox2gHK/enA2UlJjNT
WSZLmJpYEubkSKudGF38xPuZeFM1V2WPpCMIIA8Re+arspw6JYoeNj1D
-----END PRIVATE KEY-----
`.trimStart();
