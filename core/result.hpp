#pragma once
// A value or a std::error_code, for syscall boundaries that must not throw.
// The member names mirror std::expected so the type can be swapped for it later.

#include <cassert>
#include <system_error>
#include <utility>
#include <variant>

namespace telecap {

template <typename T>
class Result {
public:
    Result(T value) : v_(std::move(value)) {}            // NOLINT: implicit on purpose
    Result(std::error_code ec) : v_(ec) { assert(ec); }  // NOLINT

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    std::error_code error() const noexcept {
        return has_value() ? std::error_code{} : std::get<1>(v_);
    }

private:
    std::variant<T, std::error_code> v_;
};

inline std::error_code errno_code(int err) noexcept { return {err, std::system_category()}; }

}  // namespace telecap
