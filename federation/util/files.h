// Whole-file reads and crash-safe writes, with errors that name the file.
#pragma once

#include <string>

#include "federation/util/bytes.h"

namespace tongban {

// kNotFound if the file does not exist, kIo if it cannot be read.
Result<Bytes> readFileBytes(const std::string& path);

// Writes "<path>.tmp", fsyncs it, renames it over <path> and fsyncs the directory: after a
// crash the path holds either the old content or the whole new one.
Status writeFileAtomically(const std::string& path, const Bytes& data);

}  // namespace tongban
