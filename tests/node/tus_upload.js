// Upload a file with tus-js-client, as a Node application would.
// node tus_upload.js ENDPOINT FILE AUTHORIZATION [UPLOAD_URL] [STOP_AFTER_BYTES]
// Prints the upload URL, then "done OFFSET" or "stopped OFFSET".
const fs = require("fs");
const tus = require("tus-js-client");

const [endpoint, path, authorization, uploadUrl, stopAfter] = process.argv.slice(2);
const file = fs.readFileSync(path);
const upload = new tus.Upload(file, {
  endpoint,
  uploadUrl: uploadUrl || null,
  chunkSize: 1024 * 1024,
  retryDelays: [],
  headers: { Authorization: authorization },
  metadata: { filename: "model.bin", filetype: "application/octet-stream" },
  onChunkComplete(chunkSize, bytesAccepted) {
    if (stopAfter && bytesAccepted >= Number(stopAfter)) {
      upload.abort().then(() => {
        console.log(upload.url);
        console.log(`stopped ${bytesAccepted}`);
      });
    }
  },
  onSuccess() {
    console.log(upload.url);
    console.log(`done ${file.length}`);
  },
  onError(error) {
    console.error(String(error));
    process.exit(1);
  },
});
upload.start();
