// Head rewriting and the proxy's own responses (messages.h).
#include "router/messages.h"

#include <cstdio>

namespace stele::router {

using http1::Header;
using http1::iequals;

namespace {

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

bool is_forwarded_header(std::string_view name) {
  return iequals(name, "x-forwarded-for") || iequals(name, "x-forwarded-proto") || iequals(name, "x-forwarded-host");
}

void append_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
}

void append_status_line(std::string& out, int status, std::string_view reason) {
  char code[8];
  snprintf(code, sizeof code, "%03d", status);
  out += "HTTP/1.1 ";
  out += code;
  out += ' ';
  out += reason;
  out += "\r\n";
}

}  // namespace

void write_upstream_head(const http1::RequestHead& h, const http1::MessageInfo& info, std::string_view target,
                         const ForwardedFor& fwd, std::string& out) {
  out.clear();
  out += h.method;
  out += ' ';
  out += target;
  out += h.minor_version == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
  for (size_t i = 0; i < h.num_headers; ++i) {
    const Header& f = h.headers[i];
    if (is_forwarded_header(f.name) || http1::is_hop_by_hop(f.name, h.headers, h.num_headers)) continue;
    if (info.expect_continue && iequals(f.name, "expect")) continue;  // the proxy answered 100 itself
    append_header(out, f.name, f.value);
  }
  out += "X-Forwarded-For: ";
  for (size_t i = 0; i < h.num_headers; ++i)
    if (iequals(h.headers[i].name, "x-forwarded-for") && !h.headers[i].value.empty()) {
      out += h.headers[i].value;
      out += ", ";
    }
  out += fwd.client;
  out += "\r\n";
  append_header(out, "X-Forwarded-Proto", fwd.tls ? "https" : "http");
  if (!fwd.host.empty()) append_header(out, "X-Forwarded-Host", fwd.host);
  if (info.upgrade) {
    out += "Connection: upgrade\r\n";
    append_header(out, "Upgrade", info.upgrade_protocol);
  } else if (h.minor_version == 0) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

void write_client_head(const http1::ResponseHead& h, const http1::MessageInfo& info, bool keep_alive,
                       int client_minor, std::string& out) {
  out.clear();
  append_status_line(out, h.status, h.reason);
  for (size_t i = 0; i < h.num_headers; ++i) {
    const Header& f = h.headers[i];
    if (!http1::is_hop_by_hop(f.name, h.headers, h.num_headers)) append_header(out, f.name, f.value);
  }
  if (h.status == 101) {
    out += "Connection: upgrade\r\n";
    append_header(out, "Upgrade", info.upgrade_protocol);
  } else if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (client_minor == 0) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

const char* reason_phrase(int status) {
  switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

void write_error_response(int status, std::string_view app, std::string_view cause, bool keep_alive,
                          std::string& out) {
  std::string body;
  body.reserve(256 + cause.size() + app.size());
  std::string title = std::to_string(status) + " " + reason_phrase(status);
  body += "<!doctype html>\n<html><head><title>" + title + "</title></head>\n<body><h1>" + title + "</h1>\n<p>";
  if (!app.empty()) {
    body += "app <b>";
    append_escaped(body, app);
    body += "</b>: ";
  }
  append_escaped(body, cause);
  body += "</p>\n<hr><p>stele router</p></body></html>\n";
  out.clear();
  append_status_line(out, status, reason_phrase(status));
  out += "Content-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n";
  append_header(out, "Content-Length", std::to_string(body.size()));
  out += keep_alive ? "" : "Connection: close\r\n";
  out += "\r\n";
  out += body;
}

void write_redirect(int status, std::string_view location, bool keep_alive, std::string& out) {
  out.clear();
  append_status_line(out, status, reason_phrase(status));
  append_header(out, "Location", location);
  out += "Content-Length: 0\r\n";
  out += keep_alive ? "" : "Connection: close\r\n";
  out += "\r\n";
}

}  // namespace stele::router
