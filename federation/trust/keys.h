// Node identity: an Ed25519 key pair (libsodium), its certificate chain, and the files that
// hold them in a key directory.
//
// Key directory layout (written by `tongban keys ...`, read by the node):
//   node.key        64-byte Ed25519 secret key, hex, mode 0600
//   node.pub        32-byte public key, hex
//   node.cert       this node's SignedCertificate (binary Cap'n Proto)
//   chain/NN.cert   the issuers' certificates, parent first, up to and including the root
//   root.cert       the city's self-signed root certificate (the trust anchor)
#pragma once

#include <array>
#include <string>
#include <vector>

#include "federation/division/division.h"
#include "federation/transport/clock.h"
#include "federation/util/bytes.h"

namespace tongban {

using PublicKey = std::array<uint8_t, 32>;
using SecretKey = std::array<uint8_t, 64>;
using Signature = std::array<uint8_t, 64>;

struct KeyPair {
  PublicKey public_key{};
  SecretKey secret_key{};

  static KeyPair generate();                                   // from the OS's entropy
  static KeyPair fromSeed(const std::array<uint8_t, 32>& seed);  // deterministic (simulator)
};

Signature sign(const SecretKey& key, const uint8_t* data, size_t size);
bool verifySignature(const PublicKey& key, const uint8_t* data, size_t size, const Signature& sig);

// What a node needs to speak: its division, its keys, and its chain.
struct Identity {
  DivisionCode division;
  std::string name;
  KeyPair keys;
  Bytes certificate;          // own SignedCertificate bytes
  std::vector<Bytes> chain;   // own certificate first, then issuers up to (not incl.) the root
  Bytes root_certificate;     // the city's self-signed certificate
};

// Reads a key directory; every missing or unreadable file is named in the error.
Result<Identity> loadIdentity(const std::string& key_dir);

// Writes a key directory (creates it; refuses to overwrite an existing node.key).
Status saveIdentity(const std::string& key_dir, const Identity& identity);

}  // namespace tongban
