import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { Datasets } from './pages/Datasets.tsx';
import { Edge } from './pages/Edge.tsx';
import { Fleet } from './pages/Fleet.tsx';
import { Ingest } from './pages/Ingest.tsx';
import { Iss } from './pages/Iss.tsx';
import { type Route, useRoute } from './router.ts';
import { LoginBox, SessionProvider } from './session.tsx';

const nav: { href: string; label: string; page: Route['page'] }[] = [
  { href: '/console/fleet', label: 'Fleet', page: 'fleet' },
  { href: '/console/datasets', label: 'Datasets', page: 'datasets' },
  { href: '/console/iss', label: 'ISS', page: 'iss' },
  { href: '/console/ingest', label: 'Ingest', page: 'ingest' },
];

function Page(props: { route: Route }) {
  const r = props.route;
  switch (r.page) {
    case 'fleet':
      return <Fleet />;
    case 'edge':
      return <Edge key={r.id} id={r.id} />;
    case 'datasets':
      return <Datasets />;
    case 'iss':
      return <Iss />;
    case 'ingest':
      return <Ingest />;
    default:
      return (
        <main>
          <h1>Not found</h1>
          <p>
            No console page at <code>{r.path}</code>. <a href="/console/fleet">Fleet</a>
          </p>
        </main>
      );
  }
}

function App() {
  const route = useRoute();
  return (
    <SessionProvider>
      <header class="top">
        <a class="brand" href="/console/fleet">
          Fieldbeam
        </a>
        <nav>
          {nav.map((n) => (
            <a
              key={n.page}
              href={n.href}
              class={route.page === n.page || (n.page === 'fleet' && route.page === 'edge') ? 'active' : ''}
            >
              {n.label}
            </a>
          ))}
        </nav>
        <LoginBox />
      </header>
      <Page route={route} />
    </SessionProvider>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
