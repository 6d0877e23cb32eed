-- wrk script of bench/run.py: POST the payload of /work/shared/PEERS.md as JSON.
-- It also counts the requests each thread starts, so that run.py knows how many were still in
-- flight (sent, never answered) when wrk stopped: those may have been accepted all the same.
wrk.method = "POST"
wrk.body = '{"status":"paid","amount":12.5,"order":{"id":"A1"}}'
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   sent = 0
   prepared = wrk.format()
end

function request()
   sent = sent + 1
   return prepared
end

function done(summary, latency, requests)
   local total = 0
   for _, thread in ipairs(threads) do
      total = total + thread:get("sent")
   end
   io.write(string.format("bench: sent %d\n", total))
end
