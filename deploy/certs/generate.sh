#!/bin/sh
# generate.sh makes a private CA and the server certificates a Koers
# deployment needs (the engines' and the Koers API's), for trials and for
# clusters without a PKI of their own (with cert-manager or a corporate CA,
# issue the same names there instead):
#
#   deploy/certs/generate.sh [OUT] [NAMESPACE]
#
# OUT defaults to deploy/certs/out, NAMESPACE (the Kubernetes namespace, for
# the fully qualified names) to koers. It writes
#
#   OUT/ca/ca.crt                          the CA certificate, for everyone
#   OUT/private/ca.key                     the CA key: keep it offline
#   OUT/kurrentdb/{tls.crt,tls.key,ca.crt} one certificate for all three
#                                          KurrentDB nodes: nodes accept each
#                                          other by the certificate's common
#                                          name, which must be the same
#   OUT/nats/{tls.crt,tls.key,ca.crt}      the NATS nodes (client and route TLS)
#   OUT/postgres/{tls.crt,tls.key,ca.crt}  PostgreSQL
#   OUT/koers-api/{tls.crt,tls.key,ca.crt} the Koers API's gRPC listener
#                                          (koers serve --tls-cert,
#                                          --tls-key), for the names
#                                          clients and probes use
#
# Every certificate is good for both server and client authentication:
# KurrentDB nodes and NATS routes authenticate each other with them.
#
# The keys are left readable by all (0644) because Compose bind-mounts them
# into containers that run as different users; on a shared host, restrict
# the OUT folder instead. In Kubernetes they go into Secrets (see
# deploy/README.md). Requires OpenSSL 1.1.1 or later.
set -eu

out=${1:-$(dirname "$0")/out}
ns=${2:-koers}
days=825

mkdir -p "$out/ca" "$out/private"
chmod 0700 "$out/private"
umask 077

if [ ! -f "$out/private/ca.key" ]; then
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$out/private/ca.key"
	openssl req -x509 -new -key "$out/private/ca.key" -sha256 -days 3650 \
		-subj "/CN=Koers deployment CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$out/ca/ca.crt"
fi

# leaf NAME CN SAN... issues OUT/NAME/tls.crt for CN with the given
# subject alternative names (DNS names; IP:x.y.z.w for addresses).
leaf() {
	name=$1 cn=$2
	shift 2
	sans=""
	for san in "$@"; do
		case $san in
		IP:*) entry=$san ;;
		*) entry="DNS:$san" ;;
		esac
		sans="${sans:+$sans,}$entry"
	done
	dir="$out/$name"
	mkdir -p "$dir"
	chmod 0755 "$dir"
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/tls.key"
	openssl req -new -key "$dir/tls.key" -subj "/CN=$cn" -out "$dir/tls.csr"
	printf '%s\n' \
		"basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature,keyEncipherment" \
		"extendedKeyUsage=serverAuth,clientAuth" \
		"subjectAltName=$sans" >"$dir/ext.cnf"
	openssl x509 -req -in "$dir/tls.csr" -CA "$out/ca/ca.crt" -CAkey "$out/private/ca.key" \
		-CAcreateserial -CAserial "$out/private/ca.srl" \
		-days "$days" -sha256 -extfile "$dir/ext.cnf" -out "$dir/tls.crt"
	rm "$dir/tls.csr" "$dir/ext.cnf"
	cp "$out/ca/ca.crt" "$dir/ca.crt"
	chmod 0644 "$dir/tls.key" "$dir/tls.crt" "$dir/ca.crt"
}

svc=$ns.svc.cluster.local
leaf kurrentdb kurrentdb-node \
	kurrentdb "kurrentdb.$svc" \
	kurrentdb-0.kurrentdb kurrentdb-1.kurrentdb kurrentdb-2.kurrentdb \
	"kurrentdb-0.kurrentdb.$svc" "kurrentdb-1.kurrentdb.$svc" "kurrentdb-2.kurrentdb.$svc" \
	localhost IP:127.0.0.1
leaf nats nats \
	nats "nats.$svc" \
	nats-0.nats nats-1.nats nats-2.nats \
	"nats-0.nats.$svc" "nats-1.nats.$svc" "nats-2.nats.$svc" \
	localhost IP:127.0.0.1
leaf postgres postgres \
	postgres "postgres.$svc" localhost IP:127.0.0.1
# The API: its Kubernetes Services (koers-api, and koers-api-headless for
# clients that balance per call) and the Compose services and their alias
# (koers-api-1, koers-api-2, koers-api). The health probes connect to
# 127.0.0.1 and verify the name koers-api. Add the name outside clients
# use, if they reach the API under another one.
leaf koers-api koers-api \
	koers-api "koers-api.$svc" koers-api-headless "koers-api-headless.$svc" \
	koers-api-1 koers-api-2 \
	localhost IP:127.0.0.1
chmod 0644 "$out/ca/ca.crt"

echo "certificates in $out; the CA key is $out/private/ca.key"
