// s3rver_launch.js MODULES_DIR DATA_DIR BUCKET
//
// Starts s3rver (the version pinned in package.json) on 127.0.0.1 on a free
// port with BUCKET configured, prints "PORT <n>", and serves until killed.
// Used by the S3 tests of tests/unit/clients.
//
// s3rver 3.7.1 (the latest release) does not check signatures, and it lacks
// two calls S3 documents that twd needs: AbortMultipartUpload (DELETE
// /bucket/key?uploadId=...) answers 405, ListMultipartUploads (GET
// /bucket?uploads) answers 501. This launcher adds both in front of
// s3rver's own routes, as S3's API reference describes them, working on
// s3rver's own upload directories (DATA_DIR/BUCKET/._S3rver_uploads/<id>/,
// holding the key, the metadata and one file per part). Everything else is
// s3rver's.
'use strict';

const fs = require('fs');
const path = require('path');

const [modulesDir, dataDir, bucket] = process.argv.slice(2);
const S3rver = require(path.join(modulesDir, 's3rver'));

const uploadsDir = path.join(dataDir, bucket, '._S3rver_uploads');

function xmlEscape(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function s3Error(ctx, status, code, message) {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`;
}

// Incomplete uploads as S3 lists them: by key, then upload id.
function uploads(prefix) {
  let ids = [];
  try {
    ids = fs.readdirSync(uploadsDir);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  return ids
    .filter((id) => /^[0-9a-f]+$/.test(id))
    .map((id) => {
      const dir = path.join(uploadsDir, id);
      return {
        key: fs.readFileSync(path.join(dir, 'key'), 'utf8'),
        id,
        initiated: fs.statSync(path.join(dir, 'metadata')).mtime,
      };
    })
    .filter((u) => u.key.startsWith(prefix))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : 1));
}

function listMultipartUploads(ctx) {
  const prefix = ctx.query.prefix || '';
  const keyMarker = ctx.query['key-marker'] || '';
  const idMarker = ctx.query['upload-id-marker'] || '';
  const max = Math.min(Number(ctx.query['max-uploads'] || 1000), 1000);
  const after = uploads(prefix).filter((u) =>
    keyMarker === '' || u.key > keyMarker || (u.key === keyMarker && idMarker !== '' && u.id > idMarker));
  const page = after.slice(0, max);
  const truncated = after.length > page.length;
  const last = page[page.length - 1];
  ctx.type = 'application/xml';
  ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    `<Bucket>${xmlEscape(bucket)}</Bucket><KeyMarker>${xmlEscape(keyMarker)}</KeyMarker>` +
    `<UploadIdMarker>${xmlEscape(idMarker)}</UploadIdMarker>` +
    `<NextKeyMarker>${truncated ? xmlEscape(last.key) : ''}</NextKeyMarker>` +
    `<NextUploadIdMarker>${truncated ? last.id : ''}</NextUploadIdMarker>` +
    `<Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>${max}</MaxUploads>` +
    `<IsTruncated>${truncated}</IsTruncated>` +
    page.map((u) => `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.id}</UploadId>` +
      '<StorageClass>STANDARD</StorageClass>' +
      `<Initiated>${u.initiated.toISOString()}</Initiated></Upload>`).join('') +
    '</ListMultipartUploadsResult>';
}

function abortMultipartUpload(ctx, key) {
  const id = ctx.query.uploadId;
  const dir = path.join(uploadsDir, /^[0-9a-f]+$/.test(id) ? id : 'none');
  let owner = null;
  try {
    owner = fs.readFileSync(path.join(dir, 'key'), 'utf8');
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  if (owner !== key) {
    s3Error(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  ctx.status = 204;
}

async function multipartExtras(ctx, next) {
  const parts = ctx.path.split('/');
  if (parts[1] !== bucket) return next();
  const key = decodeURIComponent(parts.slice(2).join('/'));
  if (ctx.method === 'DELETE' && key !== '' && 'uploadId' in ctx.query) {
    abortMultipartUpload(ctx, key);
  } else if (ctx.method === 'GET' && key === '' && 'uploads' in ctx.query) {
    listMultipartUploads(ctx);
  } else {
    await next();
  }
}

const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  directory: dataDir,
  silent: true,
  configureBuckets: [{ name: bucket }],
});
// Koa composes its middleware when the server starts: ours goes first.
server.middleware.unshift(multipartExtras);
server.run().then(
  (address) => console.log(`PORT ${address.port}`),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
