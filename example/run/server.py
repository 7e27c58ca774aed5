# A Python web server under `overseer run` (no overseer code in it): the socket comes as fd 3,
# readiness goes to the pipe in OVERSEER_READY_FD, SIGTERM drains. Run from the repository:
#   npm run build && node dist/src/cli/main.js run -c example/run/overseer.config.json
#   curl localhost:8080; node dist/src/cli/main.js ctl status -c example/run/overseer.config.json
#   node dist/src/cli/main.js ctl restart -c example/run/overseer.config.json   (a new pid answers)
import http.server, json, os, signal, socket, socketserver, threading

sock = socket.fromfd(3, socket.AF_INET, socket.SOCK_STREAM)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (json.dumps({"pid": os.getpid(), "generation": os.environ.get("OVERSEER_GENERATION")}) + "\n").encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = False
    block_on_close = True

server = Server(("127.0.0.1", 0), Handler, bind_and_activate=False)
server.socket.close()
server.socket = sock
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
os.write(int(os.environ["OVERSEER_READY_FD"]), b"READY=1\n")
server.serve_forever()
server.server_close()
