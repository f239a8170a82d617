// The classroom page. The server renders the page skeleton; this bundle brings it to life.
import './style.css'
import { startIndex } from './index-page.js'
import { startRoom } from './room-page.js'
import { startProgress } from './progress-page.js'

const page = document.body.dataset.page
if (page === 'index') startIndex()
else if (page === 'room') startRoom(document.body.dataset.room)
else if (page === 'progress') startProgress()
