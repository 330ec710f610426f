import { useEffect, useState } from 'react';
import type { GroupInfo, SearchRow } from '@magpie/sdk';
import { useVM } from '../hooks.ts';
import { Session } from '../session.ts';
import { chatPath, navigate } from '../router.ts';
import { Avatar, Header, Notice } from './common.tsx';
import { useTranslation } from 'react-i18next';
import { sdkText } from '../i18n/sdk-text.ts';

function Action(props: { session: Session; r: SearchRow }) {
  const vm = props.session.contacts;
  const { r } = props;
  const { t } = useTranslation();
  if (r.self) return <span className="muted">{t('search.you')}</span>;
  switch (r.relation) {
    case 'friend':
      return (
        <button type="button" className="small" onClick={() => navigate(`/dm/${encodeURIComponent(r.id)}`)}>
          {t('search.message')}
        </button>
      );
    case 'outgoing':
      return <span className="muted" data-testid="request-pending">
          {t('search.requestSent')}
        </span>;
    case 'incoming':
      return (
        <button type="button" className="primary small" onClick={() => void vm.accept(r.id)}>
          {t('search.acceptRequest')}
        </button>
      );
    case 'blocked':
      return (
        <button type="button" className="small" onClick={() => void vm.unblock(r.id)}>
          {t('search.unblock')}
        </button>
      );
    default:
      return (
        <button type="button" className="primary small" onClick={() => void vm.requestFriend(r.id)} data-testid="add-friend">
          {t('search.addFriend')}
        </button>
      );
  }
}

export function SearchScreen(props: { session: Session }) {
  const { session } = props;
  const vm = session.contacts;
  const s = useVM(vm);
  const { t } = useTranslation();
  const [q, setQ] = useState(s.query);
  const [groups, setGroups] = useState<GroupInfo[]>([]);
  const [groupError, setGroupError] = useState<string | null>(null);

  useEffect(() => {
    const t = setTimeout(() => {
      void vm.search(q);
      if (q.trim())
        session.groups.search(q.trim().slice(0, 64), 10).then(
          (g) => setGroups(g),
          () => setGroups([]),
        );
      else setGroups([]);
    }, 250);
    return () => clearTimeout(t);
  }, [q, vm, session]);

  const join = async (g: GroupInfo) => {
    try {
      const r = await session.groups.join(g.conv);
      setGroupError(null);
      if (r.joined) navigate(chatPath(g.conv));
      else setGroupError(t('search.asked', { name: g.name }));
    } catch (err) {
      setGroupError(err instanceof Error ? err.message : String(err));
    }
  };

  return (
    <section className="search" aria-label={t('search.label')} data-testid="search">
      <Header title={t('search.title')} back="/contacts" level={2} />
      <form className="search-form" role="search" onSubmit={(e) => e.preventDefault()}>
        <label className="sr-only" htmlFor="search-input">
          {t('search.placeholder')}
        </label>
        <input id="search-input" type="search" placeholder={t('search.placeholder')} value={q} onChange={(e) => setQ(e.target.value)} autoFocus data-testid="search-input" />
      </form>
      <Notice error={s.error ?? groupError} notice={sdkText(s.notice)} />
      {s.searching && <p className="muted center">{t('search.searching')}</p>}
      <ul className="rows">
        {s.results.map((r) => (
          <li key={r.id} className="row static" data-testid="search-result" data-user={r.username}>
            <Avatar name={r.nickname || r.username} id={r.id} />
            <span className="row-main">
              <span className="row-title">{r.nickname || r.username}</span>
              <span className="row-preview">@{r.username}</span>
            </span>
            <span className="row-actions">
              <Action session={session} r={r} />
            </span>
          </li>
        ))}
      </ul>
      {groups.length > 0 && (
        <>
          <h2 className="section-title">{t('search.groups')}</h2>
          <ul className="rows">
            {groups.map((g) => (
              <li key={g.conv} className="row static" data-testid="group-result">
                <Avatar name={g.name} id={g.conv} group />
                <span className="row-main">
                  <span className="row-title">{g.name}</span>
                  <span className="row-preview">
                    {t('search.groupMeta', { count: g.memberCount, policy: g.joinPolicy === 'open' ? t('search.open') : t('search.needsApproval') })}
                  </span>
                </span>
                <span className="row-actions">
                  <button type="button" className="small" onClick={() => void join(g)}>
                    {t('search.join')}
                  </button>
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
      {q.trim() && !s.searching && s.results.length === 0 && groups.length === 0 && <p className="muted center">{t('search.nobody')}</p>}
    </section>
  );
}
